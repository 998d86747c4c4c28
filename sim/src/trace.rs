//! A trace: for each project, the times (unix seconds) at which its user or agent was active.

/// One project's activity, sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectTrace {
    pub name: String,
    /// What produced it (the synthetic archetype, or the input's name).
    pub kind: String,
    pub events: Vec<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    pub projects: Vec<ProjectTrace>,
}

impl Trace {
    /// Sorts each project's events and drops duplicates and empty projects.
    pub fn normalized(mut self) -> Trace {
        for project in &mut self.projects {
            project.events.sort_unstable();
            project.events.dedup();
        }
        self.projects.retain(|p| !p.events.is_empty());
        self.projects.sort_by(|a, b| a.name.cmp(&b.name));
        self
    }

    pub fn events(&self) -> usize {
        self.projects.iter().map(|p| p.events.len()).sum()
    }

    /// First and last event over all projects.
    pub fn span(&self) -> Option<(i64, i64)> {
        let first = self.projects.iter().filter_map(|p| p.events.first()).min()?;
        let last = self.projects.iter().filter_map(|p| p.events.last()).max()?;
        Some((*first, *last))
    }
}
