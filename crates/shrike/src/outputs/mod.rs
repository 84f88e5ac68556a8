//! Outputs: where events go besides the agent's own stdout — each a selection, a format and
//! a [`transport::Transport`] with its own bounded queue.

pub mod transport;
