//! The access-log line formats the CDN's edges can write into `c<N>`: the bundle's Logstash
//! pipeline (`kafka-logstash.conf`) and README.txt are rendered for the configured one
//! (`bundle.access_log_format`, `OUTFLOW_ACCESS_LOG_FORMAT`), and the demo traffic generator
//! (`ops/demo/access_log.py`) writes the same names.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// A named access-log line format. The grok patterns of each live in
/// `templates/bundle/kafka-logstash.conf`, its description in `templates/bundle/README.txt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "String")]
pub enum AccessLogFormat {
    /// The CDN's own line format as its customer guide parses it: delivery lines and two VOD
    /// shapes (with and without the country), the guide's field names.
    #[default]
    Cdn,
    /// An extended combined log format: combined, then virtual host, cache status, request time
    /// and point of presence.
    CombinedExtended,
}

impl AccessLogFormat {
    pub const ALL: [AccessLogFormat; 2] = [Self::Cdn, Self::CombinedExtended];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cdn => "cdn",
            Self::CombinedExtended => "combined_extended",
        }
    }
}

impl fmt::Display for AccessLogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AccessLogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|f| f.as_str() == s).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|f| f.as_str()).collect();
            format!("unknown access-log format {s:?}; use one of {}", names.join(", "))
        })
    }
}

impl TryFrom<String> for AccessLogFormat {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused_with_the_known_ones() {
        for format in AccessLogFormat::ALL {
            assert_eq!(format.as_str().parse::<AccessLogFormat>(), Ok(format));
        }
        assert_eq!(AccessLogFormat::default(), AccessLogFormat::Cdn);
        let err = "combined".parse::<AccessLogFormat>().unwrap_err();
        assert_eq!(err, "unknown access-log format \"combined\"; use one of cdn, combined_extended");
    }
}
