use super::*;

const TABLE: &str = include_str!("STATE_MACHINE.md");

fn expected_cells() -> Vec<(Option<SessionState>, Vec<String>)> {
    TABLE
        .lines()
        .filter(|line| line.starts_with('|') && !line.contains("---") && !line.contains("from \\ event"))
        // Only the transition table's rows: the first cell is a state (the page has other tables).
        .filter(|line| {
            let first = line.trim_matches('|').split('|').next().unwrap_or_default().trim();
            first == "(none)" || SessionState::parse(first).is_some()
        })
        .map(|line| {
            let cells: Vec<String> = line
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect();
            let from = match cells[0].as_str() {
                "(none)" => None,
                name => Some(SessionState::parse(name).unwrap_or_else(|| panic!("unknown state {name}"))),
            };
            (from, cells[1..].to_vec())
        })
        .collect()
}

fn describe(result: Result<SessionState, Refusal>) -> String {
    match result {
        Ok(state) => state.as_str().to_string(),
        Err(Refusal::Unchanged(_)) => "unchanged".into(),
        Err(Refusal::Busy(_)) => "busy".into(),
        Err(Refusal::Illegal { .. }) => "—".into(),
    }
}

#[test]
fn every_state_and_event_pair_matches_the_documented_table() {
    let rows = expected_cells();
    assert_eq!(rows.len(), SessionState::ALL.len() + 1, "one row per state plus (none)");
    let mut checked = 0;
    for (from, cells) in rows {
        assert_eq!(cells.len(), SessionEvent::ALL.len());
        for (event, expected) in SessionEvent::ALL.into_iter().zip(cells) {
            assert_eq!(describe(transition(from, event)), expected, "{from:?} + {event:?}");
            checked += 1;
        }
    }
    assert_eq!(checked, 72);
}

#[test]
fn refusals_carry_what_was_refused() {
    assert_eq!(
        transition(Some(SessionState::Killed), SessionEvent::Pause),
        Err(Refusal::Illegal {
            from: Some(SessionState::Killed),
            event: SessionEvent::Pause
        })
    );
    assert_eq!(
        transition(Some(SessionState::Pausing), SessionEvent::Resume),
        Err(Refusal::Busy(SessionState::Pausing))
    );
    assert_eq!(
        transition(Some(SessionState::Paused), SessionEvent::Pause),
        Err(Refusal::Unchanged(SessionState::Paused))
    );
}

#[test]
fn states_round_trip_through_their_stored_names() {
    for state in SessionState::ALL {
        assert_eq!(SessionState::parse(state.as_str()), Some(state));
        let json = serde_json::to_string(&state).expect("serializes");
        assert_eq!(json, format!("\"{}\"", state.as_str()));
    }
}
