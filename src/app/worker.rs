//! Runs one session's `/app` handlers in order, off the connection task, and
//! delivers their results (reply policy, subscribe-mapping replies, exceptions).

use super::AppRuntime;
use super::handler::{HandlerError, Inbound, Payload};
use super::router::{Mapping, ReplyTo, fill};
use crate::broker::outbound::{Outbound, Outgoing};
use crate::stomp::{Command, Frame, Headers, encoded_len_hint};
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tokio::sync::mpsc;

pub(crate) enum Job {
    /// A SEND to a `message_mapping`; `path` is the destination without its app prefix.
    Message {
        mapping: Arc<Mapping>,
        path: String,
        inbound: Inbound,
    },
    /// A SUBSCRIBE to a `subscribe_mapping`: the reply goes to that subscription only.
    Subscribe {
        mapping: Arc<Mapping>,
        inbound: Inbound,
        subscription: String,
    },
}

/// Handlers of one session run one at a time, in the order the frames arrived,
/// as Spring runs them for one session; other sessions are not held up.
pub(crate) struct AppWorker {
    jobs: mpsc::Sender<Job>,
}

impl AppWorker {
    pub fn start(runtime: Arc<AppRuntime>, outbound: Arc<Outbound>, capacity: usize) -> Self {
        let (jobs, queue) = mpsc::channel(capacity.max(1));
        tokio::spawn(run(queue, runtime, outbound));
        AppWorker { jobs }
    }

    /// Queues a job without waiting; hands it back when `capacity` jobs are waiting.
    pub fn try_submit(&self, job: Job) -> Result<(), Box<Job>> {
        match self.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(job)) => Err(Box::new(job)),
            // The worker only stops when the session ends; nothing is left to run the job.
            Err(mpsc::error::TrySendError::Closed(_)) => Ok(()),
        }
    }

    /// Queues a job, waiting for room.
    pub async fn submit(&self, job: Job) {
        let _ = self.jobs.send(job).await;
    }
}

async fn run(mut queue: mpsc::Receiver<Job>, runtime: Arc<AppRuntime>, outbound: Arc<Outbound>) {
    while let Some(job) = queue.recv().await {
        execute(&runtime, &outbound, job).await;
    }
}

async fn call(mapping: &Mapping, inbound: Inbound) -> Result<Option<Payload>, HandlerError> {
    AssertUnwindSafe((mapping.handler)(inbound))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(HandlerError::new("the handler panicked")))
}

async fn execute(runtime: &AppRuntime, outbound: &Outbound, job: Job) {
    match job {
        Job::Message {
            mapping,
            path,
            inbound,
        } => {
            let session = inbound.session.clone();
            let destination = inbound.destination.clone();
            let vars = inbound.vars.clone();
            match call(&mapping, inbound).await {
                Ok(Some(payload)) => {
                    let template = &runtime.template;
                    let result = match &mapping.reply {
                        ReplyTo::Default => {
                            template.send(&format!("/topic{path}"), &Headers::new(), payload)
                        }
                        ReplyTo::Broker(target) => {
                            template.send(&fill(target, &vars), &Headers::new(), payload)
                        }
                        ReplyTo::User {
                            destination,
                            broadcast,
                        } => match (&session.user, broadcast) {
                            (Some(user), true) => {
                                template.send_to_user(user, destination, &Headers::new(), payload)
                            }
                            _ => template.send_to_session(
                                &session.id,
                                destination,
                                &Headers::new(),
                                payload,
                            ),
                        },
                        ReplyTo::Nothing => Ok(0),
                    };
                    if let Err(error) = result {
                        tracing::warn!(session = %session.id, %destination, %error, "handler reply not delivered");
                    }
                }
                Ok(None) => {}
                Err(error) => report(runtime, outbound, &session, &destination, error),
            }
        }
        Job::Subscribe {
            mapping,
            inbound,
            subscription,
        } => {
            let session = inbound.session.clone();
            let destination = inbound.destination.clone();
            match call(&mapping, inbound).await {
                Ok(Some(payload)) => {
                    let message_id = runtime.broker.next_message_id().to_string();
                    let frame = Frame::new(Command::Message)
                        .header("subscription", subscription)
                        .header("destination", destination)
                        .header("message-id", message_id)
                        .header("content-type", payload.content_type.as_ref())
                        .body(payload.body);
                    let size = encoded_len_hint(&frame);
                    outbound.push(Outgoing::Frame(frame), size);
                }
                Ok(None) => {}
                Err(error) => report(runtime, outbound, &session, &destination, error),
            }
        }
    }
}

/// Hands a handler error to the exception handler; a fatal one also ends the session.
fn report(
    runtime: &AppRuntime,
    outbound: &Outbound,
    session: &super::SessionInfo,
    destination: &str,
    error: HandlerError,
) {
    tracing::debug!(session = %session.id, %destination, %error, "handler failed");
    if let Some((target, payload)) = (runtime.exception_handler)(&error, session, destination)
        && let Err(send_error) =
            runtime
                .template
                .send_to_session(&session.id, &target, &Headers::new(), payload)
    {
        tracing::warn!(session = %session.id, %send_error, "exception reply not delivered");
    }
    if error.close_session {
        let frame = Frame::error(
            format!("application handler failed: {}", error.message),
            None,
            Some(Command::Send),
        );
        let size = encoded_len_hint(&frame);
        outbound.push(Outgoing::Frame(frame), size);
        outbound.close_after_flush();
    }
}
