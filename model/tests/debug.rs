use sandman_model::config::Config;
use sandman_model::model::{Action, SandmanModel};
use sandman_model::ops::Op;
use sandman_model::world::Fault;
use stateright::Model;

#[test]
fn debug_open_after_autopause() {
    let scenarios = Config::bound("full").unwrap();
    let config = scenarios
        .into_iter()
        .find(|c| c.name == "e2b-pauses-on-its-own")
        .unwrap();
    let model = SandmanModel::new(config);
    let mut state = model.init_states().remove(0);
    let steps = vec![
        Action::Start(0, Op::Heartbeat("p1".into())),
        Action::Tick,
        Action::Step(0, Fault::Answered),
        Action::Step(0, Fault::Answered),
        Action::Start(0, Op::Open("p1".into())),
        Action::Step(0, Fault::Answered),
        Action::Step(0, Fault::Answered),
        Action::Step(0, Fault::Answered),
        Action::AutoPause("sb1".into()),
    ];
    for action in steps {
        state = model.next_state(&state, action.clone()).unwrap();
        eprintln!(
            "{action:?} -> {:?}",
            state.slots[0].op.as_ref().map(|f| (&f.asks, &f.confirmed))
        );
    }
    let end = model.next_state(&state, Action::Finale).unwrap();
    eprintln!("{:?}", end.judged);
}
