//! What the soak saw: operations by kind and answer, faults injected by kind, and for every
//! invariant how many cases it judged and the violations it found (a few examples each).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

const EXAMPLES_PER_KIND: usize = 5;

#[derive(Debug, Default)]
pub struct Ledger {
    inner: Mutex<Books>,
}

#[derive(Debug, Default)]
struct Books {
    operations: BTreeMap<String, u64>,
    /// Real time spent per operation kind: count, total, longest.
    timings: BTreeMap<String, (u64, std::time::Duration, std::time::Duration)>,
    faults: BTreeMap<String, u64>,
    /// Cases judged, by invariant.
    judged: BTreeMap<&'static str, u64>,
    violations: BTreeMap<&'static str, Vec<Violation>>,
    /// DynamoDB Local restarts done.
    restarts: u32,
}

#[derive(Debug, Clone)]
pub struct Violation {
    pub project: String,
    pub seen: String,
}

impl Ledger {
    fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One operation, by kind and outcome (e.g. `open` / `200 already-running`).
    pub fn operation(&self, kind: &str, outcome: &str) {
        *self
            .books()
            .operations
            .entry(format!("{kind:<18} {outcome}"))
            .or_default() += 1;
    }

    pub fn timing(&self, kind: &str, took: std::time::Duration) {
        let mut books = self.books();
        let entry = books.timings.entry(kind.to_owned()).or_default();
        entry.0 += 1;
        entry.1 += took;
        entry.2 = entry.2.max(took);
    }

    pub fn fault(&self, kind: &str) {
        *self.books().faults.entry(kind.to_owned()).or_default() += 1;
    }

    /// `cases` more cases of invariant `kind` were judged.
    pub fn judged(&self, kind: &'static str, cases: u64) {
        *self.books().judged.entry(kind).or_default() += cases;
    }

    pub fn judged_count(&self, kind: &'static str) -> u64 {
        self.books().judged.get(kind).copied().unwrap_or(0)
    }

    pub fn restarted(&self) {
        self.books().restarts += 1;
    }

    pub fn restarts(&self) -> u32 {
        self.books().restarts
    }

    pub fn violation(&self, kind: &'static str, project: impl Into<String>, seen: impl Into<String>) {
        self.books().violations.entry(kind).or_default().push(Violation {
            project: project.into(),
            seen: seen.into(),
        });
    }

    pub fn violation_count(&self) -> usize {
        self.books().violations.values().map(Vec::len).sum()
    }

    pub fn violations_of(&self, kind: &'static str) -> usize {
        self.books().violations.get(kind).map_or(0, Vec::len)
    }

    pub fn operation_count(&self) -> u64 {
        self.books().operations.values().sum()
    }

    pub fn report(&self) -> String {
        let books = self.books();
        let mut out = String::new();
        let _ = writeln!(out, "operations ({}):", books.operations.values().sum::<u64>());
        for (kind, count) in &books.operations {
            let _ = writeln!(out, "  {count:>7}  {kind}");
        }
        let _ = writeln!(out, "real time per operation (mean / longest):");
        for (kind, (count, total, longest)) in &books.timings {
            let mean = total.as_secs_f64() * 1000.0 / (*count).max(1) as f64;
            let _ = writeln!(
                out,
                "  {kind:<18} {mean:>8.0} ms / {:>6.0} ms",
                longest.as_secs_f64() * 1000.0
            );
        }
        let _ = writeln!(out, "faults injected ({}):", books.faults.values().sum::<u64>());
        for (kind, count) in &books.faults {
            let _ = writeln!(out, "  {count:>7}  {kind}");
        }
        out
    }

    /// The invariants' table (every one of `invariants`, judged count and violations; one that
    /// judged nothing is marked and counts as failed), then a few examples of each violation. The
    /// text, and how many invariants failed.
    pub fn invariants(&self, invariants: &[(&'static str, &'static str)]) -> (String, usize) {
        let books = self.books();
        let mut out = String::new();
        let mut failed = 0;
        let _ = writeln!(out, "invariants ({}):", invariants.len());
        let _ = writeln!(out, "  {:>8}  {:>10}  invariant", "judged", "violations");
        for (kind, description) in invariants {
            let judged = books.judged.get(kind).copied().unwrap_or(0);
            let violations = books.violations.get(kind).map_or(0, Vec::len);
            let mark = if judged == 0 { "  <- judged nothing: FAILS" } else { "" };
            failed += usize::from(judged == 0 || violations > 0);
            let _ = writeln!(out, "  {judged:>8}  {violations:>10}  {kind}: {description}{mark}");
        }
        let unknown: Vec<&&str> = books
            .violations
            .keys()
            .filter(|kind| !invariants.iter().any(|(k, _)| k == *kind))
            .collect();
        failed += unknown.len();
        let total: usize = books.violations.values().map(Vec::len).sum();
        let _ = writeln!(out, "invariant violations ({total}):");
        for (kind, found) in &books.violations {
            let _ = writeln!(out, "  {:>7}  {kind}", found.len());
            for example in found.iter().take(EXAMPLES_PER_KIND) {
                let _ = writeln!(out, "             {}: {}", example.project, example.seen);
            }
        }
        (out, failed)
    }
}
