//! Subjects and scopes, written `KIND:ID` everywhere: `workspace:ws-42`,
//! `file:f-9`, `account:acct-7`, `integration:yt-3`,
//! `instagram:17841400000000001`, `request:0190…`, `hold:0190…`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::InvalidInput;
use crate::ids::{
    AccountId, ExternalAccountId, HoldId, IntegrationId, RequestId, ResourceId, TaskId, WorkspaceId,
};

macro_rules! name_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value written `raw`, if there is one (its `FromStr`
            /// error lists the values when there is not).
            pub fn from_name(raw: &str) -> Option<Self> {
                match raw {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::error::InvalidInput;
            fn from_str(raw: &str) -> Result<Self, Self::Err> {
                Self::from_name(raw).ok_or_else(|| {
                    $crate::error::InvalidInput::new(
                        stringify!($name),
                        format!("unknown value {raw:?}; expected one of: {}",
                            [$($text),+].join(", ")),
                    )
                })
            }
        }
    };
}
pub(crate) use name_enum;

name_enum!(
    /// What kind of product resource a [`ResourceId`] names.
    ResourceKind {
        Project = "project",
        Folder = "folder",
        Canvas = "canvas",
        Comment = "comment",
        AiResult = "ai-result",
        File = "file",
        Transcript = "transcript",
        VisualDescription = "visual-description",
        SceneSummary = "scene-summary",
        Thumbnail = "thumbnail",
        Preview = "preview",
        OcrText = "ocr-text",
        Caption = "caption",
        Embedding = "embedding",
        SearchIndexEntry = "search-index-entry",
        ModerationSignal = "moderation-signal",
        AiSummary = "ai-summary",
        Metadata = "metadata",
        Settings = "settings",
        BillingRecord = "billing-record",
        AccountProfile = "account-profile",
        Credentials = "credentials",
    }
);

impl ResourceKind {
    /// R6: the artifacts derived from a file by processing it.
    pub fn is_derived_artifact(self) -> bool {
        use ResourceKind::*;
        matches!(
            self,
            Transcript
                | VisualDescription
                | SceneSummary
                | Thumbnail
                | Preview
                | OcrText
                | Caption
                | Embedding
                | SearchIndexEntry
                | ModerationSignal
                | AiSummary
                | Metadata
        )
    }

    /// R8: resources that may refer to a file and lose that reference when
    /// the file is deleted.
    pub fn may_reference_files(self) -> bool {
        use ResourceKind::*;
        matches!(self, Project | Folder | Canvas | Comment | AiResult)
    }

    /// R11: resources that belong to an account rather than a workspace.
    pub fn is_account_data(self) -> bool {
        matches!(
            self,
            ResourceKind::AccountProfile | ResourceKind::Credentials
        )
    }
}

name_enum!(
    /// External platforms whose analytics a workspace can connect.
    Platform {
        Youtube = "youtube",
        Tiktok = "tiktok",
        Instagram = "instagram",
    }
);

/// A product resource: its kind and id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceRef {
    pub kind: ResourceKind,
    pub id: ResourceId,
}

/// An account on an external platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExternalAccount {
    pub platform: Platform,
    pub id: ExternalAccountId,
}

/// Anything the ledger speaks about, written `KIND:ID`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    Workspace(WorkspaceId),
    Account(AccountId),
    Resource(ResourceRef),
    Integration(IntegrationId),
    External(ExternalAccount),
    Request(RequestId),
    Hold(HoldId),
    Task(TaskId),
}

impl Subject {
    pub fn resource(kind: ResourceKind, id: ResourceId) -> Self {
        Subject::Resource(ResourceRef { kind, id })
    }

    /// The `KIND` part.
    pub fn kind(&self) -> &'static str {
        match self {
            Subject::Workspace(_) => "workspace",
            Subject::Account(_) => "account",
            Subject::Resource(r) => r.kind.as_str(),
            Subject::Integration(_) => "integration",
            Subject::External(e) => e.platform.as_str(),
            Subject::Request(_) => "request",
            Subject::Hold(_) => "hold",
            Subject::Task(_) => "task",
        }
    }

    /// The `ID` part.
    pub fn id(&self) -> String {
        self.written_id().to_string()
    }

    /// The `ID` part, to be written.
    fn written_id(&self) -> &dyn fmt::Display {
        match self {
            Subject::Workspace(id) => id,
            Subject::Account(id) => id,
            Subject::Resource(r) => &r.id,
            Subject::Integration(id) => id,
            Subject::External(e) => &e.id,
            Subject::Request(id) => id,
            Subject::Hold(id) => id,
            Subject::Task(id) => id,
        }
    }

    /// Parses `KIND:ID`. The id may itself contain `:`; the kind may not.
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let Some((kind, id)) = raw.split_once(':') else {
            return Err(InvalidInput::new("subject", "must be written KIND:ID"));
        };
        let subject = match kind {
            "workspace" => Subject::Workspace(WorkspaceId::parse(id)?),
            "account" => Subject::Account(AccountId::parse(id)?),
            "integration" => Subject::Integration(IntegrationId::parse(id)?),
            "request" => Subject::Request(RequestId::parse(id)?),
            "hold" => Subject::Hold(HoldId::parse(id)?),
            "task" => Subject::Task(TaskId::parse(id)?),
            other => {
                if let Some(platform) = Platform::from_name(other) {
                    Subject::External(ExternalAccount {
                        platform,
                        id: ExternalAccountId::parse(id)?,
                    })
                } else if let Some(kind) = ResourceKind::from_name(other) {
                    Subject::resource(kind, ResourceId::parse(id)?)
                } else {
                    return Err(InvalidInput::new(
                        "subject",
                        format!("unknown kind {other:?}"),
                    ));
                }
            }
        };
        Ok(subject)
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.written_id())
    }
}

impl FromStr for Subject {
    type Err = InvalidInput;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Subject::parse(raw)
    }
}

impl Serialize for Subject {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Subject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Subject::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl From<ResourceRef> for Subject {
    fn from(r: ResourceRef) -> Self {
        Subject::Resource(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_round_trip_through_their_written_form() {
        for raw in [
            "workspace:ws-42",
            "file:f-9",
            "account:acct-7",
            "integration:yt-3",
            "instagram:17841400000000001",
            "ai-result:r:1",
            "hold:0190a0b0-0000-7000-8000-000000000001",
        ] {
            assert_eq!(Subject::parse(raw).unwrap().to_string(), raw);
        }
    }

    #[test]
    fn malformed_subjects_are_refused() {
        assert!(Subject::parse("ws-42").is_err());
        assert!(Subject::parse("planet:earth").is_err());
        assert!(Subject::parse("file:").is_err());
        assert!(Subject::parse("file:a b").is_err());
        assert!(Subject::parse(&format!("file:{}", "x".repeat(129))).is_err());
    }
}
