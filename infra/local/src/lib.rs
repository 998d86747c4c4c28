//! Running Sandman locally: the table from template.yaml, test fixtures, and the dev stack.

pub mod deployed;
pub mod dev;
pub mod fixture;
pub mod outbound;
pub mod receiver;
pub mod register;
pub mod schedules;
pub mod smoke;
pub mod stack;
pub mod table;
pub mod teardown;
pub mod testkit;
pub mod walkthrough;
pub mod wiring;
