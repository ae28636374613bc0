//! Small closed vocabularies of the ledger: who acts, through which
//! channel, which hold, which retention basis, which erasure step.

use serde::{Deserialize, Serialize};

use crate::ids::AccountId;
use crate::personal::Personal;
use crate::subject::name_enum;

/// Who initiated a product action: a person acting in the product, or
/// the platform itself (a scheduled policy, a platform callback).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Initiator {
    /// A workspace member or account holder acting in the product.
    Member { account: AccountId },
    /// The platform, e.g. a retention policy or a Meta callback.
    Platform,
}

name_enum!(
    /// A member's role in a workspace.
    Role {
        Owner = "owner",
        Admin = "admin",
        Member = "member",
    }
);

name_enum!(
    /// How a deletion request reached the ledger.
    Channel {
        InProduct = "in-product",
        MetaCallback = "meta-callback",
        GoogleYoutube = "google-youtube",
        EmailToSupport = "email-to-support",
        RetentionPolicy = "retention-policy",
    }
);

name_enum!(
    /// What kind of review a hold belongs to.
    HoldKind {
        Legal = "legal",
        Moderation = "moderation",
    }
);

name_enum!(
    /// R1 / R14: why a record is kept after a deletion.
    RetentionBasis {
        Security = "security",
        Audit = "audit",
        Troubleshooting = "troubleshooting",
        Legal = "legal",
        Billing = "billing",
        PlatformCompliance = "platform-compliance",
    }
);

name_enum!(
    /// One erasure step that a worker carries out.
    ErasureStep {
        RemoveRecord = "remove-record",
        PurgeDerivedArtifact = "purge-derived-artifact",
        RemoveSearchIndexEntries = "remove-search-index-entries",
        DeleteStorageObject = "delete-storage-object",
        RemoveReferences = "remove-references",
        RemoveMembers = "remove-members",
        RevokeTokens = "revoke-tokens",
        ClearAnalyticsCache = "clear-analytics-cache",
        DeactivateConnectionRecord = "deactivate-connection-record",
        RemoveAnalyticsRows = "remove-analytics-rows",
    }
);

impl ErasureStep {
    /// True for the steps after which the target no longer exists in
    /// active systems (R12).
    pub fn erases_target(self) -> bool {
        matches!(
            self,
            ErasureStep::RemoveRecord
                | ErasureStep::PurgeDerivedArtifact
                | ErasureStep::RemoveSearchIndexEntries
                | ErasureStep::DeactivateConnectionRecord
        )
    }
}

/// Whether a request's requester was verified, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Verification {
    /// Nothing to verify: the request comes from an authenticated product
    /// session or a signed platform callback.
    NotRequired,
    /// The requester still has to be verified.
    Pending,
    /// Verified by `by` in the way `method` describes.
    Verified { method: Personal, by: String },
}

impl Verification {
    pub fn is_satisfied(&self) -> bool {
        !matches!(self, Verification::Pending)
    }
}
