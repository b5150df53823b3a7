//! Kernel work done for many objects at once (topology files, `network rm --force`).

use std::os::fd::{BorrowedFd, RawFd};

use nsnet_core::ops::{KernelOp, NsRef};

use super::{Dumps, LiveKernel, nl_err, ns_err};
use crate::kernel::{FailKind, KernelError, Net, NsView};
use crate::netlink::{NetlinkError, Rtnl};

/// Below this many namespaces, threads cost more than they save.
const VIEWS_AT_ONCE: usize = 16;
/// Threads taking views at once (each enters the namespaces of its share in turn).
const VIEW_THREADS: usize = 4;

/// One namespace to view on a worker: its socket if this process has one, else its fd.
struct Job {
    at: usize,
    sock: Option<Rtnl>,
    fd: RawFd,
}

/// A worker's answer for one namespace: the socket (kept for the process's next ops there)
/// and the dumps.
type Done = (usize, Option<Rtnl>, Result<Dumps, NetlinkError>);

/// Views of the namespaces of `jobs`, on the calling thread, which enters each namespace in
/// turn to open a socket there (the thread is a scoped worker of `views_at_once`: it never
/// goes back to the host, and exits with its share done).
fn view_share(jobs: Vec<Job>, full: bool) -> Vec<Done> {
    jobs.into_iter()
        .map(|job| {
            let sock = match job.sock {
                Some(sock) => Ok(sock),
                None => {
                    // SAFETY: the fd is owned by the LiveKernel, which outlives this scoped
                    // thread (it is borrowed for the whole of `views_at_once`).
                    let fd = unsafe { BorrowedFd::borrow_raw(job.fd) };
                    nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET)
                        .map_err(|e| NetlinkError::Socket {
                            op: "enter netns on a view worker".into(),
                            source: std::io::Error::from(e),
                        })
                        .and_then(|()| Rtnl::open())
                }
            };
            match sock {
                Ok(mut sock) => {
                    let dumps = Dumps::take_some(&mut sock, full);
                    (job.at, Some(sock), dumps)
                }
                Err(e) => (job.at, None, Err(e)),
            }
        })
        .collect()
}

impl LiveKernel {
    /// `Net::delete_links` on the live kernel: one unregister batch (see
    /// `crate::netlink::Rtnl::del_links`), one pair of crash points for the whole batch.
    pub(super) fn delete_links_at_once(
        &mut self,
        ns: &NsRef,
        ifnames: &[String],
    ) -> Vec<Result<(), KernelError>> {
        let one_by_one = |k: &mut Self| -> Vec<Result<(), KernelError>> {
            ifnames
                .iter()
                .map(|ifname| {
                    k.apply_net(&KernelOp::DeleteLink {
                        ns: ns.clone(),
                        ifname: ifname.clone(),
                    })
                })
                .collect()
        };
        if ifnames.len() < 2 || self.recorder().is_some() || !self.netns_exists(ns) {
            return one_by_one(self);
        }
        let what = format!("delete {} links in netns {ns} at once", ifnames.len());
        if self.sock(ns, &what).is_err() {
            return one_by_one(self);
        }
        self.crash.before(&what);
        let results = match self.sock(ns, &what) {
            Ok(sock) => sock
                .del_links(ifnames)
                .into_iter()
                .map(|r| r.map_err(Ok))
                .collect(),
            Err(e) => ifnames
                .iter()
                .map(|_| Err(Err(e.clone())))
                .collect::<Vec<_>>(),
        };
        self.crash.after(&what);
        tracing::debug!(op = %what, "kernel op");
        ifnames
            .iter()
            .zip(results)
            .map(|(ifname, r)| {
                self.unlearn(ns, ifname);
                let what = format!("delete link {ifname} in netns {ns}");
                match r {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(KernelError::new(
                        &what,
                        FailKind::NotFound,
                        "no such interface",
                    )),
                    Err(Ok(e)) => Err(nl_err(&what, &e)),
                    Err(Err(e)) => Err(e),
                }
            })
            .collect()
    }
}

impl LiveKernel {
    /// `Net::views` on the live kernel: the host's on this thread, the named namespaces'
    /// on a few scoped worker threads, each entering its namespaces in turn, instead of one
    /// helper thread per namespace. The sockets opened are kept, as `view` keeps them.
    /// Without `full`, the views hold the interfaces alone (one dump per namespace).
    pub(super) fn views_at_once(
        &mut self,
        list: &[NsRef],
        full: bool,
    ) -> Vec<Result<NsView, KernelError>> {
        let named = list
            .iter()
            .filter(|ns| matches!(ns, NsRef::Named(_)))
            .count();
        if named < VIEWS_AT_ONCE || self.recorder().is_some() {
            return list.iter().map(|ns| self.view(ns)).collect();
        }
        let view = |k: &mut Self, ns: &NsRef| {
            let what = format!("inspect netns {ns}");
            let dumps =
                Dumps::take_some(k.sock(ns, &what)?, full).map_err(|e| nl_err(&what, &e))?;
            Ok(k.view_of(ns, dumps))
        };
        let mut out: Vec<Option<Result<NsView, KernelError>>> = list.iter().map(|_| None).collect();
        let mut jobs = Vec::new();
        for (at, ns) in list.iter().enumerate() {
            let NsRef::Named(name) = ns else {
                out[at] = Some(view(self, ns));
                continue;
            };
            let what = format!("inspect netns {ns}");
            match self.fd(ns, &what) {
                Ok(fd) => jobs.push(Job {
                    at,
                    sock: self.sockets.remove(name),
                    fd,
                }),
                Err(e) => out[at] = Some(Err(e)),
            }
        }
        let threads = VIEW_THREADS.min(jobs.len()).max(1);
        let per = jobs.len().div_ceil(threads);
        let mut shares: Vec<Vec<Job>> = Vec::new();
        let mut jobs = jobs.into_iter().peekable();
        while jobs.peek().is_some() {
            shares.push(jobs.by_ref().take(per).collect());
        }
        let done: Vec<Done> = std::thread::scope(|s| {
            let handles: Vec<_> = shares
                .into_iter()
                .map(|share| {
                    std::thread::Builder::new()
                        .name("nsnet-views".into())
                        .spawn_scoped(s, move || view_share(share, full))
                })
                .collect();
            let mut done = Vec::new();
            for h in handles {
                match h {
                    Ok(h) => match h.join() {
                        Ok(d) => done.extend(d),
                        Err(panic) => std::panic::resume_unwind(panic),
                    },
                    Err(e) => tracing::debug!("spawn a view worker: {e}"),
                }
            }
            done
        });
        for (at, sock, dumps) in done {
            let ns = &list[at];
            if let (Some(sock), NsRef::Named(name)) = (sock, ns) {
                self.sockets.insert(name.clone(), sock);
            }
            let what = format!("inspect netns {ns}");
            out[at] = Some(
                dumps
                    .map(|d| self.view_of(ns, d))
                    .map_err(|e| nl_err(&what, &e)),
            );
        }
        // A share whose worker could not start: its namespaces one at a time.
        list.iter()
            .zip(out)
            .map(|(ns, r)| r.unwrap_or_else(|| view(self, ns)))
            .collect()
    }
}

/// Makes the namespaces of `names` on the calling thread (a scoped worker of
/// `create_netns_at_once`), each with `lo` up, through a socket opened while the thread is
/// inside it, which is returned for the process's next ops there. The thread ends inside the
/// last namespace it made and exits.
fn create_share(names: Vec<(usize, String)>) -> Vec<(usize, Result<Rtnl, KernelError>)> {
    names
        .into_iter()
        .map(|(at, name)| {
            let what = format!("create netns {name}");
            let made = crate::netns::create_here(&name)
                .map_err(|e| ns_err(&what, &e))
                .and_then(|()| {
                    let mut sock = Rtnl::open().map_err(|e| nl_err(&what, &e))?;
                    sock.set_up_by_name("lo", true)
                        .map_err(|e| nl_err(&what, &e))?;
                    Ok(sock)
                });
            if made.is_err() {
                // As `create_netns` does: a namespace without `lo` up is not left behind.
                let _ = crate::netns::delete(&name);
            }
            (at, made)
        })
        .collect()
}

impl LiveKernel {
    /// `Net::create_netns_many` on the live kernel: a few scoped worker threads, each making
    /// its share of the namespaces in turn (the kernel sets namespaces up in parallel; only
    /// their loopback's registration takes the rtnl lock), instead of two helper threads per
    /// namespace. One pair of crash points for the whole batch.
    pub(super) fn create_netns_at_once(
        &mut self,
        names: &[String],
    ) -> Vec<Result<(), KernelError>> {
        if names.len() < VIEWS_AT_ONCE || self.recorder().is_some() {
            return names.iter().map(|n| self.create_netns(n)).collect();
        }
        let what = format!("create {} netns at once", names.len());
        self.crash.before(&what);
        let threads = VIEW_THREADS.min(names.len());
        let per = names.len().div_ceil(threads);
        let shares: Vec<Vec<(usize, String)>> = names
            .iter()
            .cloned()
            .enumerate()
            .collect::<Vec<_>>()
            .chunks(per)
            .map(<[_]>::to_vec)
            .collect();
        let done: Vec<(usize, Result<Rtnl, KernelError>)> = std::thread::scope(|s| {
            let handles: Vec<_> = shares
                .into_iter()
                .map(|share| {
                    let left: Vec<(usize, String)> = share.clone();
                    (
                        left,
                        std::thread::Builder::new()
                            .name("nsnet-netns-add".into())
                            .spawn_scoped(s, move || create_share(share)),
                    )
                })
                .collect();
            let mut done = Vec::new();
            for (share, h) in handles {
                match h {
                    Ok(h) => match h.join() {
                        Ok(d) => done.extend(d),
                        Err(panic) => std::panic::resume_unwind(panic),
                    },
                    Err(e) => done.extend(share.into_iter().map(|(at, name)| {
                        let err = KernelError::new(
                            format!("create netns {name}"),
                            FailKind::Other,
                            format!("spawn a helper thread: {e}"),
                        );
                        (at, Err(err))
                    })),
                }
            }
            done
        });
        self.crash.after(&what);
        let mut out: Vec<Result<(), KernelError>> = names
            .iter()
            .map(|n| {
                Err(KernelError::new(
                    format!("create netns {n}"),
                    FailKind::Other,
                    "not made",
                ))
            })
            .collect();
        for (at, made) in done {
            out[at] = made.map(|sock| {
                self.sockets.insert(names[at].clone(), sock);
            });
        }
        out
    }
}
