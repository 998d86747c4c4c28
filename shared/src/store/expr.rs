//! Builds DynamoDB update and condition expressions with every name and value bound to a
//! placeholder, so no attribute can collide with a reserved word and no value is ever spliced in.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

#[derive(Default)]
pub(crate) struct Expr {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
    sets: Vec<String>,
    removes: Vec<String>,
    conditions: Vec<String>,
}

impl Expr {
    pub fn name(&mut self, attribute: &str) -> String {
        let placeholder = format!("#{attribute}");
        self.names.insert(placeholder.clone(), attribute.to_string());
        placeholder
    }

    pub fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    pub fn set(&mut self, attribute: &str, value: AttributeValue) -> &mut Self {
        let (name, value) = (self.name(attribute), self.value(value));
        self.sets.push(format!("{name} = {value}"));
        self
    }

    /// `SET attribute = <expression>` where the expression was built with `name`/`value`.
    pub fn set_expression(&mut self, attribute: &str, expression: String) -> &mut Self {
        let name = self.name(attribute);
        self.sets.push(format!("{name} = {expression}"));
        self
    }

    /// Marks the project due for a retention pass at `at_ms` in shard `shard`, and counts the mark
    /// (`pruneMarks`): a pass that read fewer marks does not reschedule it.
    pub fn mark_prune_due(&mut self, shard: String, at_ms: i64) -> &mut Self {
        self.set("pruneShard", s(shard)).set("pruneAt", n(at_ms));
        let (marks, zero, one) = (self.name("pruneMarks"), self.value(n(0)), self.value(n(1)));
        self.set_expression("pruneMarks", format!("if_not_exists({marks}, {zero}) + {one}"))
    }

    pub fn remove(&mut self, attribute: &str) -> &mut Self {
        let name = self.name(attribute);
        self.removes.push(name);
        self
    }

    pub fn condition(&mut self, clause: String) -> &mut Self {
        self.conditions.push(clause);
        self
    }

    pub fn update_expression(&self) -> String {
        let mut parts = Vec::new();
        if !self.sets.is_empty() {
            parts.push(format!("SET {}", self.sets.join(", ")));
        }
        if !self.removes.is_empty() {
            parts.push(format!("REMOVE {}", self.removes.join(", ")));
        }
        parts.join(" ")
    }

    pub fn condition_expression(&self) -> Option<String> {
        (!self.conditions.is_empty()).then(|| self.conditions.join(" AND "))
    }

    pub fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    pub fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_every_name_and_value() {
        let mut expr = Expr::default();
        expr.set("state", s("RUNNING")).remove("idleShard");
        let version = expr.name("version");
        let expected = expr.value(n(3));
        expr.condition(format!("{version} = {expected}"));
        assert_eq!(expr.update_expression(), "SET #state = :v0 REMOVE #idleShard");
        assert_eq!(expr.condition_expression().as_deref(), Some("#version = :v1"));
        assert_eq!(expr.names().map(|n| n.len()), Some(3));
    }
}
