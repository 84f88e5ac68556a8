//! A rule's metadata vocabulary: severity, action and mode, spelled as policies write them.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! word_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word a policy uses.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Parses the word a policy uses.
            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// `a|b|c`, for error messages.
            pub fn choices() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join("|")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

word_enum! {
    /// How bad a match is.
    Severity {
        Info = "info",
        Low = "low",
        Medium = "medium",
        High = "high",
        Critical = "critical",
    }
}

word_enum! {
    /// What a rule asks for when it matches.
    Action {
        /// Report only.
        Alert = "alert",
        /// Make the action fail with EPERM (where the kernel can).
        Deny = "deny",
        /// Kill the process with SIGKILL.
        Kill = "kill",
    }
}

word_enum! {
    /// Whether a deny/kill rule acts or only reports what it would have done.
    Mode {
        Enforce = "enforce",
        /// Report `would_deny` instead of acting.
        Audit = "audit",
    }
}

word_enum! {
    /// What really happened to the matched action, as an alert reports it.
    Outcome {
        Alerted = "alerted",
        Denied = "denied",
        Killed = "killed",
        WouldDeny = "would_deny",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for s in Severity::ALL {
            assert_eq!(Severity::parse(s.as_str()), Some(*s));
        }
        assert_eq!(Action::parse("kill"), Some(Action::Kill));
        assert_eq!(Mode::parse("Audit"), None);
        assert_eq!(Severity::choices(), "info|low|medium|high|critical");
        assert!(Severity::Critical > Severity::High);
    }
}
