//! The faults `--faults` names.

use std::fmt;
use std::str::FromStr;

/// A fault the orchestrator can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// SIGSTOP a current holder for longer than its TTL, then SIGCONT.
    Pause,
    /// SIGKILL a current holder and start a replacement client.
    Kill,
    /// Blackhole the connections between clients and the backend (fault proxy).
    Partition,
    /// Delay the traffic between clients and the backend (fault proxy).
    Latency,
    /// Cut a connection after a request and before its reply (fault proxy).
    Cut,
    /// Reset every open connection between clients and the backend (fault proxy).
    Reset,
    /// Kill and restart a backend server the run started itself.
    Restart,
}

impl Fault {
    /// Every fault, in the order `--faults` documents them.
    pub const ALL: [Fault; 7] = [
        Fault::Pause,
        Fault::Kill,
        Fault::Partition,
        Fault::Latency,
        Fault::Cut,
        Fault::Reset,
        Fault::Restart,
    ];

    /// The name used on the command line and in histories.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Pause => "pause",
            Fault::Kill => "kill",
            Fault::Partition => "partition",
            Fault::Latency => "latency",
            Fault::Cut => "cut",
            Fault::Reset => "reset",
            Fault::Restart => "restart",
        }
    }

    /// Whether it goes through the TCP fault proxy (so the URL must name one `host:port`).
    pub fn needs_proxy(self) -> bool {
        matches!(
            self,
            Fault::Partition | Fault::Latency | Fault::Cut | Fault::Reset
        )
    }

    /// Whether it needs a server the run started itself (`--servers`).
    pub fn needs_own_server(self) -> bool {
        matches!(self, Fault::Restart)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let fault = Fault::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown fault {s:?}; expected pause, kill, partition, latency, cut, reset or \
                     restart"
                )
            })?;
        Ok(fault)
    }
}

/// Parses a comma-separated list (`pause,kill`); duplicates are dropped, order kept.
///
/// # Errors
/// Naming the unknown or unimplemented fault.
pub fn parse_list(s: &str) -> Result<Vec<Fault>, String> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.trim().is_empty()) {
        let f: Fault = part.parse()?;
        if !out.contains(&f) {
            out.push(f);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_unknown_faults_say_so() {
        assert_eq!(
            parse_list("pause,kill,pause").unwrap(),
            [Fault::Pause, Fault::Kill]
        );
        assert_eq!(parse_list("").unwrap(), []);
        assert!(
            parse_list("pause,bogus")
                .unwrap_err()
                .contains("unknown fault \"bogus\"")
        );
        let all = parse_list("pause,kill,partition,latency,cut,reset,restart").unwrap();
        assert_eq!(all, Fault::ALL);
        assert!(all.iter().filter(|f| f.needs_proxy()).count() == 4);
    }
}
