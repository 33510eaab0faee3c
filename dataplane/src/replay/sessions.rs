//! `--sessions FILE`: the NAT sessions and IPv6 flows alive at the end of a replay, or
//! at a capture time (`--sessions-at T`), one per line as `conntrack -L`
//! prints them or as JSON lines with `--json` (the format is
//! `crate::sessions`, shared with `ctl sessions format=text`). Written to a
//! temporary file and renamed at the end, like every replay output.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::output::{TmpFile, io_err};
use super::{ReplayError, Snapshot};
use crate::Timestamp;
use crate::pipeline::Shared;

/// When `--sessions-at` takes the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionsAt {
    /// After the last packet (the default).
    End,
    /// At this capture time (ns since the Unix epoch).
    Absolute(u64),
    /// This long (ns) after the first packet's capture time (`+S`).
    AfterFirst(u64),
}

impl SessionsAt {
    /// Parse `--sessions-at`: seconds since the Unix epoch (as pcap
    /// timestamps count; fractions allowed) or `+S`, seconds after the
    /// first packet.
    ///
    /// # Errors
    /// A message naming the flag and what it accepts.
    pub fn parse(s: &str) -> Result<SessionsAt, String> {
        let bad = || {
            format!(
                "--sessions-at `{s}`: want seconds since the epoch (e.g. 1700000000.5) or +SECONDS after the first packet"
            )
        };
        let (rel, num) = match s.strip_prefix('+') {
            Some(r) => (true, r),
            None => (false, s),
        };
        let v: f64 = num.parse().map_err(|_| bad())?;
        if !v.is_finite() || !(0.0..=1.0e10).contains(&v) {
            return Err(bad());
        }
        let ns = (v * 1e9).round() as u64;
        Ok(if rel {
            SessionsAt::AfterFirst(ns)
        } else {
            SessionsAt::Absolute(ns)
        })
    }
}

/// The `--sessions` output.
pub struct SessionsFile {
    at: SessionsAt,
    json: bool,
    out: Option<(TmpFile, BufWriter<File>)>,
    /// Sessions written.
    pub written: u64,
}

impl SessionsFile {
    /// Create the temporary file for `path`.
    ///
    /// # Errors
    /// [`ReplayError::Io`] naming the file.
    pub fn create(path: &Path, at: SessionsAt, json: bool) -> Result<SessionsFile, ReplayError> {
        Ok(SessionsFile {
            at,
            json,
            out: Some(TmpFile::create(path)?),
            written: 0,
        })
    }

    /// Rename the file into place.
    ///
    /// # Errors
    /// [`ReplayError::Io`] naming the file.
    pub fn finish(&mut self) -> Result<(), ReplayError> {
        match self.out.take() {
            Some((mut t, w)) => t.commit(w),
            None => Ok(()),
        }
    }
}

impl Snapshot for SessionsFile {
    fn at_ns(&self, first_ns: u64) -> Option<u64> {
        match self.at {
            SessionsAt::End => None,
            SessionsAt::Absolute(t) => Some(t),
            SessionsAt::AfterFirst(d) => Some(first_ns.saturating_add(d)),
        }
    }

    fn take(&mut self, shared: &Shared, now: Timestamp) -> Result<(), ReplayError> {
        let Some((t, w)) = self.out.as_mut() else {
            return Ok(());
        };
        let now = now.as_nanos();
        let sessions = shared
            .nat
            .as_ref()
            .map(|n| n.sessions_by_worker(&nat::SessionFilter::default(), usize::MAX))
            .unwrap_or_default();
        for (worker, s) in sessions {
            // Alive at `now`: a session past its deadline is gone even if
            // no poll removed it yet.
            if s.expires_at_ns <= now {
                continue;
            }
            let line = if self.json {
                crate::sessions::json_object(worker, &s, now).to_string()
            } else {
                crate::sessions::text_line(worker, &s, now)
            };
            w.write_all(line.as_bytes())
                .and_then(|()| w.write_all(b"\n"))
                .map_err(|e| io_err(&t.tmp, e))?;
            self.written += 1;
        }
        for (k, exp) in shared.v6flows.scan(usize::MAX) {
            if exp <= now {
                continue;
            }
            let line = if self.json {
                crate::sessions::flow_json(&k, exp, now).to_string()
            } else {
                crate::sessions::flow_line(&k, exp, now)
            };
            w.write_all(line.as_bytes())
                .and_then(|()| w.write_all(b"\n"))
                .map_err(|e| io_err(&t.tmp, e))?;
            self.written += 1;
        }
        Ok(())
    }
}
