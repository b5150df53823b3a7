//! A small synchronous OVSDB client (RFC 7047): JSON-RPC 1.0 over the server's unix socket,
//! a stream of concatenated JSON values with no framing. It sends `transact`, answers the
//! server's `echo` keepalives, and ignores notifications (it never monitors).

use std::io::{self, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

/// The database every transaction names.
pub const DB: &str = "Open_vSwitch";

/// How long one request may wait for its answer: a `wait` op blocks on the server side for
/// at most its own timeout, which is below this.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Why an OVSDB request failed.
#[derive(Debug, thiserror::Error)]
pub enum OvsdbError {
    #[error("ovsdb socket {path}: {source}")]
    Connect { path: String, source: io::Error },
    #[error("ovsdb {0}")]
    Io(#[from] io::Error),
    #[error("ovsdb sent malformed JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The server refused the request, or an operation of a transaction (`error` is the
    /// RFC's error string, e.g. "constraint violation", "timed out").
    #[error("ovsdb {error}{}", details.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Refused {
        error: String,
        details: Option<String>,
    },
    #[error("ovsdb answered {0}")]
    Unexpected(String),
}

/// A connection to ovsdb-server.
pub struct Ovsdb {
    writer: UnixStream,
    reader: serde_json::StreamDeserializer<
        'static,
        serde_json::de::IoRead<BufReader<UnixStream>>,
        Value,
    >,
    next_id: u64,
}

impl Ovsdb {
    /// Connects to the server's unix socket.
    pub fn connect(path: &Path) -> Result<Ovsdb, OvsdbError> {
        let connect_err = |source| OvsdbError::Connect {
            path: path.display().to_string(),
            source,
        };
        let writer = UnixStream::connect(path).map_err(connect_err)?;
        writer
            .set_read_timeout(Some(READ_TIMEOUT))
            .map_err(connect_err)?;
        let reader = writer.try_clone().map_err(connect_err)?;
        Ok(Ovsdb {
            writer,
            reader: serde_json::Deserializer::from_reader(BufReader::new(reader)).into_iter(),
            next_id: 1,
        })
    }

    fn send(&mut self, msg: &Value) -> Result<(), OvsdbError> {
        let mut bytes = serde_json::to_vec(msg)?;
        bytes.push(b'\n');
        self.writer.write_all(&bytes)?;
        Ok(())
    }

    /// Calls `method` and returns its result, answering echo requests meanwhile.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, OvsdbError> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"method": method, "params": params, "id": id}))?;
        loop {
            let msg = match self.reader.next() {
                Some(msg) => msg?,
                None => {
                    return Err(OvsdbError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed by ovsdb-server",
                    )));
                }
            };
            if msg.get("method").and_then(Value::as_str) == Some("echo") {
                // The server drops clients that do not answer its keepalives.
                let reply = json!({"result": msg["params"], "error": null, "id": msg["id"]});
                self.send(&reply)?;
                continue;
            }
            if msg.get("id").and_then(Value::as_u64) != Some(id) {
                // A notification (id null) or an answer to nothing we asked.
                continue;
            }
            if !msg["error"].is_null() {
                return Err(refusal(&msg["error"]));
            }
            return Ok(msg["result"].clone());
        }
    }

    /// Runs `ops` as one transaction on the Open_vSwitch database: all or nothing. Returns
    /// each operation's result; the first failed operation is the error.
    pub fn transact(&mut self, ops: Vec<Value>) -> Result<Vec<Value>, OvsdbError> {
        let n = ops.len();
        let mut params = vec![json!(DB)];
        params.extend(ops);
        let result = self.call("transact", Value::Array(params))?;
        let Value::Array(results) = result else {
            return Err(OvsdbError::Unexpected(result.to_string()));
        };
        // An error that is no operation's (e.g. a referential integrity violation found at
        // commit) comes as an extra element after the operations' results.
        if let Some(err) = results
            .iter()
            .find(|r| r.get("error").is_some_and(|e| !e.is_null()))
        {
            return Err(refusal(err));
        }
        if results.len() < n {
            return Err(OvsdbError::Unexpected(format!(
                "{} results for {n} operations",
                results.len()
            )));
        }
        Ok(results)
    }
}

fn refusal(err: &Value) -> OvsdbError {
    match err {
        Value::String(s) => OvsdbError::Refused {
            error: s.clone(),
            details: None,
        },
        v => OvsdbError::Refused {
            error: v["error"].as_str().unwrap_or("error").to_string(),
            details: v["details"].as_str().map(str::to_string),
        },
    }
}

/// The rows a `select` returned.
pub fn rows(result: &Value) -> &[Value] {
    result["rows"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// An OVSDB map of strings, as the protocol writes it.
pub fn map<'a>(pairs: impl IntoIterator<Item = (&'a str, String)>) -> Value {
    Value::Array(vec![
        json!("map"),
        Value::Array(pairs.into_iter().map(|(k, v)| json!([k, v])).collect()),
    ])
}

/// The value of `key` in an OVSDB map column, if present.
pub fn map_get<'a>(column: &'a Value, key: &str) -> Option<&'a str> {
    column
        .get(1)?
        .as_array()?
        .iter()
        .find(|pair| pair[0].as_str() == Some(key))?
        .get(1)?
        .as_str()
}

/// A row's uuid as a value to name it in a later operation.
pub fn uuid_of(row: &Value) -> Option<Value> {
    let uuid = &row["_uuid"];
    (uuid[0].as_str() == Some("uuid")).then(|| uuid.clone())
}

/// The elements of an OVSDB set column (a lone value is a set of one).
pub fn set_elems(column: &Value) -> Vec<&Value> {
    match column {
        Value::Array(a) if a.first().and_then(Value::as_str) == Some("set") => a
            .get(1)
            .and_then(Value::as_array)
            .map(|v| v.iter().collect())
            .unwrap_or_default(),
        v => vec![v],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_as_the_protocol_writes_them() {
        let m = map([("nsnet-network", "lan".to_string())]);
        assert_eq!(m, json!(["map", [["nsnet-network", "lan"]]]));
        assert_eq!(map_get(&m, "nsnet-network"), Some("lan"));
        assert_eq!(map_get(&m, "other"), None);
        let row = json!({"_uuid": ["uuid", "1234"]});
        assert_eq!(uuid_of(&row), Some(json!(["uuid", "1234"])));
        assert_eq!(set_elems(&json!(["set", []])).len(), 0);
        assert_eq!(set_elems(&json!(["set", [1, 2]])).len(), 2);
        assert_eq!(set_elems(&json!(["uuid", "x"])).len(), 1);
        let e = refusal(&json!({"error": "constraint violation", "details": "dup"}));
        assert_eq!(e.to_string(), "ovsdb constraint violation: dup");
    }

    #[test]
    fn answers_echo_and_skips_notifications_before_its_reply() {
        let (a, b) = UnixStream::pair().unwrap();
        let server = std::thread::spawn(move || {
            let mut w = b.try_clone().unwrap();
            let mut msgs =
                serde_json::Deserializer::from_reader(BufReader::new(b)).into_iter::<Value>();
            let req = msgs.next().unwrap().unwrap();
            assert_eq!(req["method"], "transact");
            // A keepalive and a notification arrive first, then the answer, in pieces.
            w.write_all(br#"{"method":"echo","params":["x"],"id":"echo"}{"method":"update","params":[],"id":null}"#).unwrap();
            let echo = msgs.next().unwrap().unwrap();
            assert_eq!(echo, json!({"result": ["x"], "error": null, "id": "echo"}));
            let answer = format!(
                r#"{{"id":{},"result":[{{"count":1}}],"error":null}}"#,
                req["id"]
            );
            let (x, y) = answer.split_at(7);
            w.write_all(x.as_bytes()).unwrap();
            w.write_all(y.as_bytes()).unwrap();
        });
        let writer = a.try_clone().unwrap();
        let mut c = Ovsdb {
            writer,
            reader: serde_json::Deserializer::from_reader(BufReader::new(a)).into_iter(),
            next_id: 7,
        };
        let r = c
            .transact(vec![json!({"op": "comment", "comment": "t"})])
            .unwrap();
        assert_eq!(r, vec![json!({"count": 1})]);
        server.join().unwrap();
    }

    #[test]
    fn a_failed_operation_is_the_error() {
        let (a, b) = UnixStream::pair().unwrap();
        let server = std::thread::spawn(move || {
            let mut w = b.try_clone().unwrap();
            let mut msgs =
                serde_json::Deserializer::from_reader(BufReader::new(b)).into_iter::<Value>();
            let req = msgs.next().unwrap().unwrap();
            let answer = json!({"id": req["id"], "error": null, "result": [{"uuid": ["uuid", "u"]}, {"error": "constraint violation", "details": "Transaction causes multiple rows in \"Port\" table to have identical values"}]});
            w.write_all(answer.to_string().as_bytes()).unwrap();
        });
        let writer = a.try_clone().unwrap();
        let mut c = Ovsdb {
            writer,
            reader: serde_json::Deserializer::from_reader(BufReader::new(a)).into_iter(),
            next_id: 1,
        };
        let e = c.transact(vec![json!({}), json!({})]).unwrap_err();
        assert!(
            matches!(&e, OvsdbError::Refused { error, .. } if error == "constraint violation"),
            "{e}"
        );
        server.join().unwrap();
    }
}
