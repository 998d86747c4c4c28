//! Usage counters per period (a project's and its team's), and team budgets.
//!
//! Counters are added to once per E2B execution, in one transaction with that execution's marker,
//! so a redelivered event, or a `killed` that reports the run a `paused` reported, never counts
//! twice; reading a period's usage is one GetItem, whatever the number of sandboxes or events.

use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnConsumedCapacity, TransactWriteItem, Update};
use time::OffsetDateTime;

use super::items::Item;
use super::query::text;
use super::time_ms::{from_ms, to_ms, ttl_seconds};
use super::{Consistency, Store, StoreError, keys};
use crate::domain::{ProjectKey, TeamId, Usage};
use crate::store::Counted;
use crate::usage::Period;

/// An execution's marker is kept as long as E2B may deliver its events again (its events API keeps 7 days).
const DEDUPE_KEPT: Duration = Duration::from_secs(8 * 24 * 3600);

/// Counters are kept about 13 months, so a year ago's month can still be compared.
const COUNTERS_KEPT: Duration = Duration::from_secs(400 * 24 * 3600);

/// What a period's counters hold: compute E2B reported, and compute pausing avoided.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PeriodUsage {
    pub used: Usage,
    pub saved: Usage,
}

/// A team's monthly budget and how far the current period has gone with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub monthly_usd: f64,
    /// The period in which 80% was recorded (once per period).
    pub warned_period: Option<String>,
    /// The period in which 100% was reached: opens are refused until it ends.
    pub reached_period: Option<String>,
    pub reached_at: Option<OffsetDateTime>,
    pub updated_at: OffsetDateTime,
}

/// A team whose budget was reached and whose running sandboxes are still to be paused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetReached {
    pub team: TeamId,
    pub period: String,
}

const USED: [&str; 3] = ["runSeconds", "vcpuSeconds", "memoryMbSeconds"];
const SAVED: [&str; 3] = ["savedSeconds", "savedVcpuSeconds", "savedMemoryMbSeconds"];

impl Store {
    /// Counts one execution's compute, once: a marker for the execution (kept as long as E2B may
    /// redeliver) and the project's and team's counters for the period, in one transaction. With
    /// `on_project`, the project item's running total too, while the item exists. `false`: this
    /// execution was counted before.
    pub async fn count_usage(&self, key: &ProjectKey, counted: &Counted) -> Result<bool, StoreError> {
        if counted.on_project {
            let mut items = self.usage_items(key, counted)?;
            items.push(self.project_total(key, counted)?);
            let failed = items.len() as f64 * 2.0;
            if self.transact_if(items, failed).await? {
                return Ok(true);
            }
        }
        // Counted before, or the project is gone (then the team's counters still take it).
        let items = self.usage_items(key, counted)?;
        let failed = items.len() as f64 * 2.0;
        self.transact_if(items, failed).await
    }

    fn usage_items(&self, key: &ProjectKey, counted: &Counted) -> Result<Vec<TransactWriteItem>, StoreError> {
        let marker = Put::builder()
            .table_name(&self.table)
            .item(
                "pk",
                AttributeValue::S(keys::execution_pk(&key.team, &counted.execution)),
            )
            .item("sk", AttributeValue::S(keys::WEBHOOK_SK.into()))
            .item("expiresAt", number(ttl_seconds(counted.at + DEDUPE_KEPT) as f64))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(super::error::build)?;
        let period = Period::of(counted.at).to_string();
        let mut adds = Vec::new();
        let mut values = Item::new();
        for (names, usage, tag) in [(USED, Some(counted.used), "u"), (SAVED, counted.saved, "s")] {
            let Some(usage) = usage else { continue };
            let amounts = [usage.run_seconds, usage.vcpu_seconds, usage.memory_mb_seconds];
            for (i, (name, amount)) in names.iter().zip(amounts).enumerate() {
                let placeholder = format!(":{tag}{i}");
                adds.push(format!("{name} {placeholder}"));
                values.insert(placeholder, number(amount));
            }
        }
        values.insert(
            ":ttl".into(),
            AttributeValue::N(ttl_seconds(counted.at + COUNTERS_KEPT).to_string()),
        );
        let expression = format!("ADD {} SET expiresAt = :ttl", adds.join(", "));
        let mut items = vec![TransactWriteItem::builder().put(marker).build()];
        for pk in [keys::project_pk(key), keys::team_pk(&key.team)] {
            let update = Update::builder()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(pk))
                .key("sk", AttributeValue::S(keys::usage_sk(&period)))
                .update_expression(&expression)
                .set_expression_attribute_values(Some(values.clone()))
                .build()
                .map_err(super::error::build)?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        Ok(items)
    }

    /// The project item's running total, only while the item exists.
    fn project_total(&self, key: &ProjectKey, counted: &Counted) -> Result<TransactWriteItem, StoreError> {
        let used = counted.used;
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(keys::project_pk(key)))
            .key("sk", AttributeValue::S(keys::PROJECT_SK.into()))
            .update_expression("ADD usageRunSeconds :r, usageVcpuSeconds :v, usageMemoryMbSeconds :m")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":r", number(used.run_seconds))
            .expression_attribute_values(":v", number(used.vcpu_seconds))
            .expression_attribute_values(":m", number(used.memory_mb_seconds))
            .build()
            .map_err(super::error::build)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    pub async fn project_usage(&self, key: &ProjectKey, period: Period) -> Result<PeriodUsage, StoreError> {
        self.period_usage(keys::project_pk(key), period).await
    }

    pub async fn team_usage(&self, team: &TeamId, period: Period) -> Result<PeriodUsage, StoreError> {
        self.period_usage(keys::team_pk(team), period).await
    }

    async fn period_usage(&self, pk: String, period: Period) -> Result<PeriodUsage, StoreError> {
        let item = self
            .item(pk, keys::usage_sk(&period.to_string()), Consistency::Strong)
            .await?
            .unwrap_or_default();
        let usage = |names: [&str; 3]| {
            let [run, vcpu, memory] = names.map(|name| decimal(&item, name));
            Usage {
                run_seconds: run,
                vcpu_seconds: vcpu,
                memory_mb_seconds: memory,
            }
        };
        Ok(PeriodUsage {
            used: usage(USED),
            saved: usage(SAVED),
        })
    }

    pub async fn budget(&self, team: &TeamId, consistency: Consistency) -> Result<Option<Budget>, StoreError> {
        let item = self
            .item(keys::team_pk(team), keys::BUDGET_SK.into(), consistency)
            .await?;
        Ok(item.map(|item| Budget {
            monthly_usd: decimal(&item, "monthlyUsd"),
            warned_period: text(&item, "warnedPeriod"),
            reached_period: text(&item, "reachedPeriod"),
            reached_at: super::query::number(&item, "reachedAt").map(from_ms),
            updated_at: from_ms(super::query::number(&item, "updatedAt").unwrap_or_default()),
        }))
    }

    /// Sets the team's monthly budget. A new budget lifts a refusal of this period at once, and
    /// takes the team off the enforcer's list in the same transaction: a raised budget never has
    /// the team's sandboxes paused by the tick that follows.
    pub async fn put_budget(&self, team: &TeamId, monthly_usd: f64, now: OffsetDateTime) -> Result<Budget, StoreError> {
        let budget = Update::builder()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(keys::team_pk(team)))
            .key("sk", AttributeValue::S(keys::BUDGET_SK.into()))
            .update_expression(
                "SET monthlyUsd = :usd, updatedAt = :now, teamId = :team REMOVE reachedPeriod, reachedAt, warnedPeriod",
            )
            .expression_attribute_values(":usd", number(monthly_usd))
            .expression_attribute_values(":now", AttributeValue::N(to_ms(now).to_string()))
            .expression_attribute_values(":team", AttributeValue::S(team.to_string()))
            .build()
            .map_err(super::error::build)?;
        let unlisted = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(keys::BUDGET_REACHED_PK.into()))
            .key("sk", AttributeValue::S(team.to_string()))
            .build()
            .map_err(super::error::build)?;
        let out = self
            .transact(vec![
                TransactWriteItem::builder().update(budget).build(),
                TransactWriteItem::builder().delete(unlisted).build(),
            ])
            .await
            .map_err(super::transact::spent)?;
        self.capacity.record_write(out.consumed_capacity());
        Ok(Budget {
            monthly_usd,
            warned_period: None,
            reached_period: None,
            reached_at: None,
            updated_at: now,
        })
    }

    pub async fn delete_budget(&self, team: &TeamId) -> Result<(), StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(keys::team_pk(team)))
            .key("sk", AttributeValue::S(keys::BUDGET_SK.into()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(super::error::dynamo)?;
        self.capacity.record_write(out.consumed_capacity());
        Ok(())
    }

    /// Records that the team's usage passed 80% of its budget in `period`: true only for the first
    /// writer of the period.
    pub async fn mark_budget_warned(&self, team: &TeamId, period: Period) -> Result<bool, StoreError> {
        let mark = self
            .first_of_period(team, "warnedPeriod", period)
            .build()
            .map_err(super::error::build)?;
        self.transact_if(vec![TransactWriteItem::builder().update(mark).build()], 2.0)
            .await
    }

    /// Records that the team reached its budget in `period` (first writer only) and, in the same
    /// transaction, lists the team for the enforcer, which pauses its running sandboxes: a writer
    /// cut short leaves both or neither. True for the first writer.
    /// Only while the budget is still the `monthly_usd` the crossing was computed from: a budget
    /// raised meanwhile is not marked reached.
    pub async fn mark_budget_reached(
        &self,
        team: &TeamId,
        period: Period,
        monthly_usd: f64,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mark = self
            .first_of_period(team, "reachedPeriod", period)
            .update_expression("SET reachedPeriod = :period, reachedAt = :now")
            .condition_expression(
                "attribute_exists(pk) AND monthlyUsd = :usd \
                 AND (attribute_not_exists(reachedPeriod) OR reachedPeriod <> :period)",
            )
            .expression_attribute_values(":usd", number(monthly_usd))
            .expression_attribute_values(":now", AttributeValue::N(to_ms(now).to_string()))
            .build()
            .map_err(super::error::build)?;
        let listing = Put::builder()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(keys::BUDGET_REACHED_PK.into()))
            .item("sk", AttributeValue::S(team.to_string()))
            .item("period", AttributeValue::S(period.to_string()))
            .item("expiresAt", AttributeValue::N(ttl_seconds(period.end()).to_string()))
            .build()
            .map_err(super::error::build)?;
        let items = vec![
            TransactWriteItem::builder().update(mark).build(),
            TransactWriteItem::builder().put(listing).build(),
        ];
        self.transact_if(items, 4.0).await
    }

    /// `SET <field> = :period` on the team's budget item, only while it exists and `field` holds
    /// another period: the first writer of each period wins.
    fn first_of_period(
        &self,
        team: &TeamId,
        field: &str,
        period: Period,
    ) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        Update::builder()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(keys::team_pk(team)))
            .key("sk", AttributeValue::S(keys::BUDGET_SK.into()))
            .update_expression(format!("SET {field} = :period"))
            .condition_expression(format!(
                "attribute_exists(pk) AND (attribute_not_exists({field}) OR {field} <> :period)"
            ))
            .expression_attribute_values(":period", AttributeValue::S(period.to_string()))
    }

    /// The teams whose running sandboxes the enforcer still has to pause (one query; empty almost always).
    pub async fn budgets_reached(&self) -> Result<Vec<BudgetReached>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(keys::BUDGET_REACHED_PK.into()))
            .consistent_read(true)
            .limit(100)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(super::error::dynamo)?;
        self.capacity.record_read(out.consumed_capacity());
        Ok(out
            .items()
            .iter()
            .filter_map(|item| {
                Some(BudgetReached {
                    team: TeamId::parse(text(item, "sk")?).ok()?,
                    period: text(item, "period")?,
                })
            })
            .collect())
    }

    /// The enforcer paused what the team had running (or the listing is of a period past): the
    /// listing goes, only while it still names `period` (a new period's listing stays).
    pub async fn clear_budget_reached(&self, team: &TeamId, period: &str) -> Result<(), StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(keys::BUDGET_REACHED_PK.into()))
            .key("sk", AttributeValue::S(team.to_string()))
            .condition_expression("#period = :period")
            .expression_attribute_names("#period", "period")
            .expression_attribute_values(":period", AttributeValue::S(period.to_owned()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match out {
            Ok(out) => self.capacity.record_write(out.consumed_capacity()),
            Err(err) if super::error::condition_failed(&err) => self.capacity.record_failed_write(1.0),
            Err(err) => return Err(super::error::dynamo(err)),
        }
        Ok(())
    }
}

fn number(value: f64) -> AttributeValue {
    AttributeValue::N(format!("{}", if value.is_finite() { value } else { 0.0 }))
}

fn decimal(item: &Item, name: &str) -> f64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}
