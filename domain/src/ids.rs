//! Identifiers. The product's own ids are opaque strings that we parse once
//! at the edge; Lethe's own ids (requests, holds, tasks) are UUID v7 chosen
//! by the application layer, since the domain does not read the clock.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::InvalidInput;

/// Longest product id, in characters.
pub const PRODUCT_ID_CHARS_MAX: usize = 128;

/// Checks the product id rule: 1 to 128 characters from letters, digits
/// and `. _ - :`.
fn parse_product_id(field: &'static str, raw: &str) -> Result<String, InvalidInput> {
    let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':');
    if raw.is_empty() || raw.chars().count() > PRODUCT_ID_CHARS_MAX {
        return Err(InvalidInput::new(
            field,
            format!("must be 1 to {PRODUCT_ID_CHARS_MAX} characters"),
        ));
    }
    if !raw.chars().all(valid_char) {
        return Err(InvalidInput::new(
            field,
            "may hold only letters, digits and . _ - :",
        ));
    }
    Ok(raw.to_owned())
}

macro_rules! product_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses a product id (1–128 characters of letters, digits, `. _ - :`).
            pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
                parse_product_id($field, raw).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidInput;
            fn try_from(raw: String) -> Result<Self, Self::Error> {
                Self::parse(&raw)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

product_id!(
    /// A workspace, as the workspace service names it.
    WorkspaceId,
    "workspace_id"
);
product_id!(
    /// A person's account on the platform.
    AccountId,
    "account_id"
);
product_id!(
    /// Any product resource: file, project, derived artifact, ...
    ResourceId,
    "resource_id"
);
product_id!(
    /// A connection of a workspace to YouTube, TikTok or Instagram.
    IntegrationId,
    "integration_id"
);
product_id!(
    /// An account on an external platform, e.g. an Instagram user id.
    ExternalAccountId,
    "external_account_id"
);

macro_rules! lethe_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID (v7, made by the application layer).
            pub fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }

            /// Parses the hyphenated form.
            pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
                Uuid::parse_str(raw)
                    .map(Self)
                    .map_err(|_| InvalidInput::new(stringify!($name), "must be a UUID"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

lethe_id!(
    /// A deletion request.
    RequestId
);
lethe_id!(
    /// A legal or moderation hold.
    HoldId
);
lethe_id!(
    /// One erasure step released to workers.
    TaskId
);
