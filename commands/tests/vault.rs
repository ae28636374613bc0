//! The vault over an in-memory key table: sealing, opening, forgetting,
//! tampering and rotation, without a database.

use std::sync::Arc;

use commands::vault::{flip_last_char, KeyTable, MemoryKeyTable};
use commands::{MasterKey, Vault, VaultError};
use domain::events::{HoldEvent, LedgerEvent};
use domain::ids::{ExternalAccountId, HoldId};
use domain::personal::Personal;
use domain::subject::{Platform, Subject};
use domain::values::HoldKind;
use uuid::Uuid;

fn hold_placed(matter: &str) -> LedgerEvent {
    HoldEvent::HoldPlaced {
        hold: HoldId::from_uuid(Uuid::nil()),
        scope: Subject::parse("file:f-1").unwrap(),
        kind: HoldKind::Legal,
        matter: Personal::plain(matter),
        reason: Personal::plain("preservation order"),
        placed_by: "legal:ann".into(),
    }
    .into()
}

fn stored_text(event: &LedgerEvent) -> String {
    serde_json::to_string(event).unwrap()
}

#[tokio::test]
async fn sealed_values_open_until_their_owner_is_forgotten() {
    let vault = Vault::ephemeral();
    let mut event = hold_placed("MATTER-77");
    vault.seal_event(&mut event, Uuid::now_v7()).await.unwrap();
    let mut text = stored_text(&event);
    assert!(
        !text.contains("MATTER-77") && !text.contains("preservation"),
        "{text}"
    );
    assert!(text.contains("sealed1:hold:"), "{text}");

    let mut shown = text.clone();
    vault.reveal(&mut [&mut shown]).await.unwrap();
    assert!(
        shown.contains("MATTER-77") && shown.contains("preservation order"),
        "{shown}"
    );

    let owner = Subject::Hold(HoldId::from_uuid(Uuid::nil()));
    assert!(
        vault.forget(&owner).await.unwrap(),
        "a live key was destroyed"
    );
    assert!(!vault.forget(&owner).await.unwrap(), "only once");
    vault.reveal(&mut [&mut text]).await.unwrap();
    assert!(!text.contains("MATTER-77"));
    assert_eq!(text.matches("[erased]").count(), 2, "{text}");

    // Values sealed for a forgotten owner later are erased at once.
    let mut later = hold_placed("MATTER-78");
    vault.seal_event(&mut later, Uuid::now_v7()).await.unwrap();
    let later = stored_text(&later);
    assert!(
        later.contains("erased1:hold:") && !later.contains("MATTER-78"),
        "{later}"
    );
}

#[tokio::test]
async fn external_ids_become_keyed_hashes_and_are_shown_until_forgotten() {
    let vault = Vault::ephemeral();
    let id = ExternalAccountId::parse("17841400000000001").unwrap();
    let pseudonym = vault
        .admit_external(Platform::Instagram, &id)
        .await
        .unwrap();
    assert!(pseudonym.as_str().starts_with("kh1-"), "{pseudonym}");
    assert_eq!(
        vault.pseudonym(Platform::Instagram, &id),
        pseudonym,
        "stable"
    );
    assert_eq!(
        vault.pseudonym(Platform::Instagram, &pseudonym),
        pseudonym,
        "idempotent"
    );
    assert_ne!(
        vault.pseudonym(Platform::Tiktok, &id),
        pseudonym,
        "per platform"
    );

    let mut text = format!("deletion of instagram:{pseudonym} requested");
    vault.reveal(&mut [&mut text]).await.unwrap();
    assert_eq!(text, "deletion of instagram:17841400000000001 requested");

    let owner = vault.lookup_subject(&Subject::parse("instagram:17841400000000001").unwrap());
    vault.forget(&owner).await.unwrap();
    let mut text = format!("deletion of instagram:{pseudonym} requested");
    vault.reveal(&mut [&mut text]).await.unwrap();
    assert_eq!(text, "deletion of instagram:[erased] requested");
}

#[tokio::test]
async fn a_changed_ciphertext_is_tampering_not_erasure() {
    let table = Arc::new(MemoryKeyTable::default());
    let vault = Vault::with_memory_table(table.clone());
    let mut event = hold_placed("MATTER-77");
    vault.seal_event(&mut event, Uuid::now_v7()).await.unwrap();
    let LedgerEvent::Hold(HoldEvent::HoldPlaced { matter, .. }) = &event else {
        unreachable!()
    };
    let mut token = matter.stored().to_owned();
    flip_last_char(&mut token);
    let error = vault.reveal(&mut [&mut token]).await.unwrap_err();
    assert!(matches!(error, VaultError::Tampered(_)), "{error}");

    // A directory entry changed in the key table.
    let id = ExternalAccountId::parse("UC-channel-1").unwrap();
    let pseudonym = vault.admit_external(Platform::Youtube, &id).await.unwrap();
    table.corrupt_directory(pseudonym.as_str()).await;
    let mut text = format!("youtube:{pseudonym}");
    let error = vault.reveal(&mut [&mut text]).await.unwrap_err();
    assert!(matches!(error, VaultError::Tampered(_)), "{error}");

    // A token naming a key that never existed.
    let mut forged = token.replace("hold:", "hold:0");
    let error = vault.reveal(&mut [&mut forged]).await.unwrap_err();
    assert!(matches!(error, VaultError::Tampered(_)), "{error}");
}

#[tokio::test]
async fn rotation_rewraps_every_key_and_the_old_master_key_no_longer_opens() {
    let table = Arc::new(MemoryKeyTable::default());
    let old = MasterKey::generate();
    let vault = Vault::open(table.clone(), old.clone()).await.unwrap();
    let mut event = hold_placed("MATTER-77");
    vault.seal_event(&mut event, Uuid::now_v7()).await.unwrap();
    let new = MasterKey::generate();
    assert_eq!(
        vault.rotate(&new).await.unwrap(),
        2,
        "lookup key and one data key"
    );
    assert_eq!(
        vault.rotate(&new).await.unwrap(),
        0,
        "a second run has nothing left"
    );
    for key in table.key_page(None, 10).await.unwrap() {
        assert_eq!(key.master_id, new.id());
    }
    let reopened = Vault::open(table.clone(), new).await.unwrap();
    let mut text = stored_text(&event);
    reopened.reveal(&mut [&mut text]).await.unwrap();
    assert!(text.contains("MATTER-77"));
    let error = Vault::open(table, old).await.unwrap_err();
    assert!(
        matches!(error, VaultError::WrongMasterKey { .. }),
        "{error}"
    );
    assert!(MasterKey::from_base64("not a key").is_err());
}
