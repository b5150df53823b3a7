//! A recording transport for tests without root: every datagram a socket would send is logged
//! (with its family and namespace) and answered the way the kernel would, by a responder the
//! test controls. So a test asserts which netlink messages an operation produces, and counts
//! its round trips, without a kernel.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use netlink_packet_core::{NLM_F_DUMP, NLMSG_DONE, NLMSG_ERROR};

use super::wire::{self, NLMSG_HDRLEN};

/// One message of a recorded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Netlink message type, e.g. RTM_NEWLINK (16).
    pub kind: u16,
    /// NLM_F_* flags.
    pub flags: u16,
    /// Everything after the netlink header.
    pub payload: Vec<u8>,
}

/// One request datagram, that is one round trip to the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// `rtnetlink` or `nfnetlink`.
    pub family: &'static str,
    /// The namespace the socket belongs to (`host`, or a namespace's name).
    pub ns: String,
    pub messages: Vec<Message>,
}

/// How the fake kernel answers one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reaction {
    /// Data messages (type, payload) sent before the ACK, e.g. the RTM_NEWLINK of a GETLINK.
    pub data: Vec<(u16, Vec<u8>)>,
    /// 0 to acknowledge, else the errno to refuse the message with.
    pub errno: i32,
}

type Responder = Box<dyn FnMut(&Datagram, &Message) -> Reaction + Send>;

#[derive(Default)]
struct Log {
    sent: Vec<Datagram>,
    responder: Option<Responder>,
    sysctls: Vec<String>,
}

/// The shared log of every socket made from it; clones share it.
#[derive(Clone, Default)]
pub struct Recorder {
    log: Arc<Mutex<Log>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("sent", &self.lock().sent.len())
            .finish()
    }
}

impl Recorder {
    /// A recorder that acknowledges every message and answers dumps with nothing.
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// Answers each message with what `responder` says (ACK and no data by default).
    pub fn respond(&self, responder: impl FnMut(&Datagram, &Message) -> Reaction + Send + 'static) {
        self.lock().responder = Some(Box::new(responder));
    }

    /// Every datagram sent so far, in order.
    pub fn sent(&self) -> Vec<Datagram> {
        self.lock().sent.clone()
    }

    /// Forgets what was sent so far (e.g. after a test's setup).
    pub fn clear(&self) {
        let mut log = self.lock();
        log.sent.clear();
        log.sysctls.clear();
    }

    /// The sysctl writes a recording kernel stood in for, as `NS: KEY=VALUE`: not netlink, but
    /// never to be done to the machine by a test.
    pub fn sysctls(&self) -> Vec<String> {
        self.lock().sysctls.clone()
    }

    pub(crate) fn note_sysctl(&self, ns: &str, key: &str, value: &str) {
        self.lock().sysctls.push(format!("{ns}: {key}={value}"));
    }

    fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn endpoint(&self, family: &'static str, ns: &str) -> Endpoint {
        Endpoint {
            recorder: self.clone(),
            family,
            ns: ns.to_owned(),
            queue: VecDeque::new(),
        }
    }
}

/// One socket's end of a [`Recorder`]: its answers wait here until read.
pub(crate) struct Endpoint {
    recorder: Recorder,
    family: &'static str,
    ns: String,
    queue: VecDeque<Vec<u8>>,
}

impl Endpoint {
    /// Logs the datagram and queues the kernel-like answer to it.
    pub(crate) fn send(&mut self, data: &[u8]) {
        let mut headers = Vec::new();
        let mut messages = Vec::new();
        for (hdr, payload) in wire::messages(data).map_while(Result::ok) {
            headers.push(hdr);
            messages.push(Message {
                kind: hdr.kind,
                flags: hdr.flags,
                payload: payload.to_vec(),
            });
        }
        let datagram = Datagram {
            family: self.family,
            ns: self.ns.clone(),
            messages,
        };
        let mut log = self.recorder.lock();
        let mut answer = Vec::new();
        for (hdr, msg) in headers.iter().zip(&datagram.messages) {
            let reaction = match log.responder.as_mut() {
                Some(respond) => respond(&datagram, msg),
                None => Reaction::default(),
            };
            // A refused message that asked for no answer is a refused nf_tables batch: the
            // kernel stops there, and the rest of the datagram gets no answer.
            let abort = reaction.errno != 0 && !hdr.wants_answer();
            if reaction.errno != 0 || hdr.wants_answer() {
                for (kind, payload) in &reaction.data {
                    push(&mut answer, *kind, 0, hdr.seq, payload);
                }
                let mut err = (-reaction.errno).to_ne_bytes().to_vec();
                if reaction.errno == 0 && hdr.flags & NLM_F_DUMP == NLM_F_DUMP {
                    push(&mut answer, NLMSG_DONE, 0, hdr.seq, &err);
                } else {
                    // The echoed request header, as the kernel sends it.
                    err.extend_from_slice(&data_header(hdr));
                    push(&mut answer, NLMSG_ERROR, 0, hdr.seq, &err);
                }
            }
            if abort {
                break;
            }
        }
        log.sent.push(datagram);
        if !answer.is_empty() {
            self.queue.push_back(answer);
        }
    }

    /// The next queued answer, copied into `buf` (grown as needed).
    pub(crate) fn recv(&mut self, blocking: bool, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
        match self.queue.pop_front() {
            Some(answer) => {
                if answer.len() > buf.len() {
                    buf.resize(answer.len(), 0);
                }
                buf[..answer.len()].copy_from_slice(&answer);
                Ok(Some(answer.len()))
            }
            None if blocking => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "recording transport: no answer queued",
            )),
            None => Ok(None),
        }
    }
}

fn data_header(hdr: &wire::MsgHeader) -> [u8; NLMSG_HDRLEN] {
    let mut h = [0u8; NLMSG_HDRLEN];
    h[0..4].copy_from_slice(&(hdr.len as u32).to_ne_bytes());
    h[4..6].copy_from_slice(&hdr.kind.to_ne_bytes());
    h[6..8].copy_from_slice(&hdr.flags.to_ne_bytes());
    h[8..12].copy_from_slice(&hdr.seq.to_ne_bytes());
    h
}

fn push(out: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, payload: &[u8]) {
    let start = out.len();
    wire::push_msg(out, kind, flags, payload);
    out[start + 8..start + 12].copy_from_slice(&seq.to_ne_bytes());
}
