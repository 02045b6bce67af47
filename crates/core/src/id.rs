//! Newtype identifiers, so that a site can never be passed where a service is meant.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }
    };
}

string_id!(
    /// A site: one datacenter or region, or a controller-only witness.
    SiteId
);
string_id!(
    /// A service whose endpoints Switchyard health-checks and routes to.
    ServiceId
);
string_id!(
    /// One address of a service in one site, written `service/site/n` (n counts from 1 per site).
    EndpointId
);
string_id!(
    /// A DNS zone, always fully qualified with a trailing dot (`example.test.`).
    ZoneName
);
string_id!(
    /// A DNS provider declared in the cluster configuration (`embedded` is built in).
    ProviderId
);
string_id!(
    /// A runbook, named by its `name` key.
    RunbookId
);
string_id!(
    /// One step of a runbook, unique within it (rollback steps included).
    StepId
);
string_id!(
    /// An API principal: a person or a system holding a bearer token.
    PrincipalName
);

/// A controller node: one `switchyard serve` process and one Raft member.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.0)
    }
}

impl EndpointId {
    /// The identifier of the `ordinal`-th endpoint (from 1) of `service` in `site`.
    pub fn of(service: &ServiceId, site: &SiteId, ordinal: usize) -> Self {
        Self(format!("{service}/{site}/{ordinal}"))
    }
}
