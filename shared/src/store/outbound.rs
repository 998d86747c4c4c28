//! Outbound webhooks' items: a team's endpoints (and their count, which bounds them), their
//! signing secrets sealed, and each endpoint's delivery log. Layout and cost: `TABLE.md`.

use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};

use super::accounts::{binary, bytes};
use super::expr::{n, s};
use super::items::Item;
use super::query::{number, text};
use super::time_ms::{from_ms, to_ms, ttl_seconds};
use super::{Consistency, Cursor, Page, Store, StoreError, keys};
use crate::domain::TeamId;
use crate::outbound::{Delivery, DeliveryStatus, Endpoint, EventType, SigningSecret, StoredSecret};
use crate::team_keys::Sealed;

/// How long a delivery stays in its endpoint's log.
const DELIVERY_LOG_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

impl Store {
    /// Adds an endpoint unless the team has `limit` already: one transaction of the team's
    /// endpoint count (conditional) and the endpoint. `Ok(false)`: the limit is reached.
    pub async fn put_endpoint(&self, endpoint: &Endpoint, limit: u32) -> Result<bool, StoreError> {
        let team_pk = keys::team_pk(&endpoint.team);
        let count = Update::builder()
            .table_name(&self.table)
            .key("pk", s(&team_pk))
            .key("sk", s(keys::ENDPOINT_COUNT_SK))
            .update_expression("SET endpointCount = if_not_exists(endpointCount, :zero) + :one")
            .condition_expression("attribute_not_exists(endpointCount) OR endpointCount < :limit")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            .build()
            .map_err(super::error::build)?;
        let mut item: Item = [
            ("pk", s(&team_pk)),
            ("sk", s(keys::endpoint_sk(&endpoint.endpoint_id))),
            ("teamId", s(endpoint.team.as_str())),
            ("endpointId", s(&endpoint.endpoint_id)),
            ("url", s(&endpoint.url)),
            ("createdAt", n(to_ms(endpoint.created_at))),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        match &endpoint.secret {
            StoredSecret::Sealed(sealed) => {
                item.insert("secretWrap".into(), s(&sealed.wrap));
                item.insert("secretWrappedKey".into(), binary(&sealed.wrapped_key));
                item.insert("secretNonce".into(), binary(&sealed.nonce));
                item.insert("secretCiphertext".into(), binary(&sealed.ciphertext));
            }
            StoredSecret::Clear(secret) => {
                item.insert("secret".into(), s(secret.expose()));
            }
        }
        item.insert(
            "events".into(),
            AttributeValue::L(endpoint.events.iter().map(|e| s(e.as_str())).collect()),
        );
        if !endpoint.description.is_empty() {
            item.insert("description".into(), s(&endpoint.description));
        }
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(super::error::build)?;
        let items = vec![
            TransactWriteItem::builder().update(count).build(),
            TransactWriteItem::builder().put(put).build(),
        ];
        self.transact_if(items, 4.0).await
    }

    /// A team's endpoints (at most the per-team limit: one page).
    pub async fn list_endpoints(&self, team: &TeamId, consistency: Consistency) -> Result<Vec<Endpoint>, StoreError> {
        let query = self
            .client
            .query()
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(keys::team_pk(team)))
            .expression_attribute_values(":prefix", s(keys::ENDPOINT_PREFIX))
            .consistent_read(consistency == Consistency::Strong);
        Ok(self.page(query, None, 100, endpoint).await?.items)
    }

    pub async fn get_endpoint(&self, team: &TeamId, endpoint_id: &str) -> Result<Option<Endpoint>, StoreError> {
        self.item(
            keys::team_pk(team),
            keys::endpoint_sk(endpoint_id),
            Consistency::Eventual,
        )
        .await?
        .map(|item| endpoint(&item))
        .transpose()
    }

    /// Removes an endpoint and gives its place back. `Ok(false)`: there was none. Its delivery
    /// log expires by TTL.
    pub async fn delete_endpoint(&self, team: &TeamId, endpoint_id: &str) -> Result<bool, StoreError> {
        let team_pk = keys::team_pk(team);
        let delete = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.table)
            .key("pk", s(&team_pk))
            .key("sk", s(keys::endpoint_sk(endpoint_id)))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(super::error::build)?;
        let count = Update::builder()
            .table_name(&self.table)
            .key("pk", s(&team_pk))
            .key("sk", s(keys::ENDPOINT_COUNT_SK))
            .update_expression("SET endpointCount = endpointCount - :one")
            .condition_expression("endpointCount > :zero")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(super::error::build)?;
        let items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            TransactWriteItem::builder().update(count).build(),
        ];
        self.transact_if(items, 4.0).await
    }

    /// Records one attempt of a delivery: one UpdateItem (1 WCU) on its log item, created by the
    /// first attempt.
    pub async fn record_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let mut set = vec![
            "messageId = :id",
            "eventType = :type",
            "#status = :status",
            "attempts = :attempts",
            "lastAttemptAt = :at",
            "createdAt = if_not_exists(createdAt, :at)",
            "expiresAt = :expires",
        ];
        let mut remove = Vec::new();
        let mut values: Item = [
            (":id", s(&delivery.message_id)),
            (":type", s(delivery.event_type.as_str())),
            (":status", s(delivery.status.as_str())),
            (":attempts", n(delivery.attempts)),
            (":at", n(to_ms(delivery.last_attempt_at))),
            (":expires", n(ttl_seconds(delivery.last_attempt_at + DELIVERY_LOG_TTL))),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        // What this attempt saw replaces what the previous one saw.
        match delivery.last_status_code {
            Some(code) => {
                set.push("lastStatusCode = :code");
                values.insert(":code".into(), n(code));
            }
            None => remove.push("lastStatusCode"),
        }
        match &delivery.last_error {
            Some(error) => {
                set.push("lastError = :error");
                values.insert(":error".into(), s(error));
            }
            None => remove.push("lastError"),
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::deliveries_pk(&delivery.team, &delivery.endpoint_id)))
            .key("sk", s(keys::delivery_sk(&delivery.message_id)))
            .update_expression(expression)
            .expression_attribute_names("#status", "status")
            .set_expression_attribute_values(Some(values))
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(super::error::dynamo)?;
        self.capacity.record_write(out.consumed_capacity());
        Ok(())
    }

    /// An endpoint's delivery log, newest first.
    pub async fn list_deliveries(
        &self,
        team: &TeamId,
        endpoint_id: &str,
        cursor: Option<&Cursor>,
        limit: i32,
    ) -> Result<Page<Delivery>, StoreError> {
        let query = self
            .client
            .query()
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(keys::deliveries_pk(team, endpoint_id)))
            .scan_index_forward(false);
        let (team, endpoint_id) = (team.clone(), endpoint_id.to_owned());
        self.page(query, cursor, limit, move |item| delivery(&team, &endpoint_id, item))
            .await
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("endpoint item: {what}"))
}

fn endpoint(item: &Item) -> Result<Endpoint, StoreError> {
    let field = |name: &str| text(item, name).ok_or_else(|| corrupt(name));
    let events = item
        .get("events")
        .and_then(|v| v.as_l().ok())
        .ok_or_else(|| corrupt("events"))?
        .iter()
        .filter_map(|v| v.as_s().ok())
        .filter_map(|name| EventType::parse(name))
        .collect();
    Ok(Endpoint {
        team: TeamId::parse(field("teamId")?).map_err(|_| corrupt("teamId"))?,
        endpoint_id: field("endpointId")?,
        url: field("url")?,
        events,
        description: text(item, "description").unwrap_or_default(),
        secret: stored_secret(item)?,
        created_at: from_ms(number(item, "createdAt").ok_or_else(|| corrupt("createdAt"))?),
    })
}

fn stored_secret(item: &Item) -> Result<StoredSecret, StoreError> {
    if let Some(ciphertext) = bytes(item, "secretCiphertext") {
        let part = |name: &str| bytes(item, name).ok_or_else(|| corrupt(name));
        return Ok(StoredSecret::Sealed(Sealed {
            wrap: text(item, "secretWrap").ok_or_else(|| corrupt("secretWrap"))?,
            wrapped_key: part("secretWrappedKey")?,
            nonce: part("secretNonce")?,
            ciphertext,
        }));
    }
    let clear = text(item, "secret").ok_or_else(|| corrupt("secret"))?;
    Ok(StoredSecret::Clear(
        SigningSecret::parse(&clear).map_err(|_| corrupt("secret"))?,
    ))
}

fn delivery(team: &TeamId, endpoint_id: &str, item: &Item) -> Result<Delivery, StoreError> {
    let bad = |name: &str| StoreError::Corrupt(format!("delivery item: {name}"));
    let field = |name: &str| text(item, name).ok_or_else(|| bad(name));
    let at = |name: &str| number(item, name).map(from_ms).ok_or_else(|| bad(name));
    Ok(Delivery {
        team: team.clone(),
        endpoint_id: endpoint_id.to_owned(),
        message_id: field("messageId")?,
        event_type: EventType::parse(&field("eventType")?).ok_or_else(|| bad("eventType"))?,
        status: DeliveryStatus::parse(&field("status")?).ok_or_else(|| bad("status"))?,
        attempts: number(item, "attempts")
            .and_then(|a| u32::try_from(a).ok())
            .ok_or_else(|| bad("attempts"))?,
        last_status_code: number(item, "lastStatusCode").and_then(|c| u16::try_from(c).ok()),
        last_error: text(item, "lastError"),
        created_at: at("createdAt")?,
        last_attempt_at: at("lastAttemptAt")?,
    })
}
