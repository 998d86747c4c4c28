//! E2B account records: a team's own E2B key, sealed (`team_keys::seal`), and the E2B team id each
//! account's webhook registration reported.

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity, ReturnValue};
use time::OffsetDateTime;

use super::expr::{Expr, n, s};
use super::items::Item;
use super::query::{number, text};
use super::time_ms::{from_ms, to_ms};
use super::{Consistency, Store, StoreError, keys};
use crate::domain::TeamId;
use crate::team_keys::{E2bAccount, Sealed};

/// A team's registered E2B key as stored: never the key itself.
#[derive(Debug, Clone, PartialEq)]
pub struct TeamKeyRecord {
    pub sealed: Sealed,
    pub last_four: String,
    pub updated_at: OffsetDateTime,
}

impl Store {
    /// Stores the team's sealed key. The E2B team its webhook reported is dropped: a new key may be
    /// another E2B team, so the webhook must be registered again.
    pub async fn put_team_key(&self, team: &TeamId, record: &TeamKeyRecord) -> Result<(), StoreError> {
        let mut e = Expr::default();
        e.set("wrap", s(&record.sealed.wrap))
            .set("wrappedKey", binary(&record.sealed.wrapped_key))
            .set("nonce", binary(&record.sealed.nonce))
            .set("ciphertext", binary(&record.sealed.ciphertext))
            .set("lastFour", s(&record.last_four))
            .set("updatedAt", n(to_ms(record.updated_at)))
            .remove("e2bTeamId");
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::ACCOUNTS_PK))
            .key("sk", s(keys::account_sk(&E2bAccount::Team(team.clone()))))
            .update_expression(e.update_expression())
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(super::error::dynamo)?;
        self.capacity.record_write(out.consumed_capacity());
        Ok(())
    }

    pub async fn team_key(&self, team: &TeamId, consistency: Consistency) -> Result<Option<TeamKeyRecord>, StoreError> {
        let sk = keys::account_sk(&E2bAccount::Team(team.clone()));
        let item = self.item(keys::ACCOUNTS_PK.to_owned(), sk, consistency).await?;
        item.as_ref().map(team_key_record).transpose().map(Option::flatten)
    }

    /// Removes the team's key (and its account record); whether there was one.
    pub async fn delete_team_key(&self, team: &TeamId) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(keys::ACCOUNTS_PK))
            .key("sk", s(keys::account_sk(&E2bAccount::Team(team.clone()))))
            .return_values(ReturnValue::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(super::error::dynamo)?;
        self.capacity.record_write(out.consumed_capacity());
        Ok(out.attributes.is_some_and(|old| old.contains_key("ciphertext")))
    }

    /// Every team with a registered key, all pages: the reconciler lists each such account.
    pub async fn registered_teams(&self) -> Result<Vec<(TeamId, TeamKeyRecord)>, StoreError> {
        let mut teams = Vec::new();
        let mut cursor = None;
        loop {
            let query = self
                .client
                .query()
                .key_condition_expression("pk = :pk AND begins_with(sk, :team)")
                .expression_attribute_values(":pk", s(keys::ACCOUNTS_PK))
                .expression_attribute_values(":team", s(keys::TEAM_ACCOUNT_PREFIX));
            let page = self
                .page(query, cursor.as_ref(), 100, |item| {
                    let sk = text(item, "sk").unwrap_or_default();
                    let team = TeamId::parse(sk.trim_start_matches(keys::TEAM_ACCOUNT_PREFIX))
                        .map_err(|err| StoreError::Corrupt(format!("account record {sk}: {err}")))?;
                    Ok(team_key_record(item)?.map(|record| (team, record)))
                })
                .await?;
            teams.extend(page.items.into_iter().flatten());
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(teams),
            }
        }
    }

    /// Records which E2B team an account's key belongs to, as E2B reported it when the account's
    /// webhook was registered. (A record with no sealed key is no registered key: listings skip it.)
    pub async fn set_account_e2b_team(&self, account: &E2bAccount, e2b_team_id: &str) -> Result<bool, StoreError> {
        let mut e = Expr::default();
        e.set("e2bTeamId", s(e2b_team_id));
        let answer = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::ACCOUNTS_PK))
            .key("sk", s(keys::account_sk(account)))
            .update_expression(e.update_expression())
            .set_condition_expression(e.condition_expression())
            .set_expression_attribute_names(e.names())
            .set_expression_attribute_values(e.values())
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        Ok(self.conditional_update(answer)?.is_some())
    }

    /// The account's record: whether it exists, and the E2B team its webhook registration reported.
    pub async fn account(&self, account: &E2bAccount) -> Result<Option<AccountRecord>, StoreError> {
        let item = self
            .item(
                keys::ACCOUNTS_PK.to_owned(),
                keys::account_sk(account),
                Consistency::Eventual,
            )
            .await?;
        Ok(item.map(|item| AccountRecord {
            has_key: item.contains_key("ciphertext"),
            e2b_team_id: text(&item, "e2bTeamId"),
        }))
    }
}

/// What the webhook function reads of an account: never the sealed key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub has_key: bool,
    pub e2b_team_id: Option<String>,
}

impl AccountRecord {
    /// A team's record speaks for an E2B account of its own: a registered key, or a recorded E2B
    /// team (its webhook was registered with the team's key, registered or configured).
    pub fn is_own_account(&self) -> bool {
        self.has_key || self.e2b_team_id.is_some()
    }
}

pub(super) fn binary(bytes: &[u8]) -> AttributeValue {
    AttributeValue::B(Blob::new(bytes))
}

pub(super) fn bytes(item: &Item, name: &str) -> Option<Vec<u8>> {
    item.get(name).and_then(|v| v.as_b().ok()).map(|b| b.as_ref().to_vec())
}

fn team_key_record(item: &Item) -> Result<Option<TeamKeyRecord>, StoreError> {
    let Some(ciphertext) = bytes(item, "ciphertext") else {
        return Ok(None);
    };
    let corrupt = |what: &str| StoreError::Corrupt(format!("team key record: no {what}"));
    Ok(Some(TeamKeyRecord {
        sealed: Sealed {
            wrap: text(item, "wrap").ok_or_else(|| corrupt("wrap"))?,
            wrapped_key: bytes(item, "wrappedKey").ok_or_else(|| corrupt("wrappedKey"))?,
            nonce: bytes(item, "nonce").ok_or_else(|| corrupt("nonce"))?,
            ciphertext,
        },
        last_four: text(item, "lastFour").unwrap_or_default(),
        updated_at: from_ms(number(item, "updatedAt").unwrap_or_default()),
    }))
}
