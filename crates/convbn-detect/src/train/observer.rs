//! What a detection run reports while it goes: progress bars and logs implement
//! [`Observer<DetectLog>`](Observer) (the lock-step runner's observer, with detection's records).

pub use convbn_train::observer::{Observer, Silent as Quiet};
