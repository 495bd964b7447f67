//! `MessagingTemplate`, Spring's `SimpMessagingTemplate`: publish to a broker
//! destination or to a user's sessions from any task, JSON by default.

use super::handler::{HandlerError, Payload};
use super::users::UserRegistry;
use crate::broker::Broker;
use crate::broker::destination::{self, Route};
use crate::broker::user_destination::{self, session_key};
use crate::cluster::{Cluster, Forward, UserDelivery};
use crate::stomp::Headers;
use serde::Serialize;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("{0:?} is not a broker destination (configured broker prefixes: {1})")]
    NotBrokerDestination(String, String),
    #[error("user destination {0:?} must start with '/' and must not start with /user")]
    BadUserDestination(String),
    #[error("invalid destination: {0}")]
    Destination(#[from] destination::DestinationError),
    #[error("{0}")]
    Payload(String),
}

impl From<HandlerError> for TemplateError {
    fn from(error: HandlerError) -> Self {
        TemplateError::Payload(error.message)
    }
}

pub(crate) fn check_user_destination(destination: &str) -> Result<(), TemplateError> {
    if !destination.starts_with('/') || user_destination::starts_with_user_prefix(destination) {
        return Err(TemplateError::BadUserDestination(destination.to_owned()));
    }
    destination::validate(destination)?;
    Ok(())
}

/// Cheap to clone; usable from any task.
#[derive(Debug, Clone)]
pub struct MessagingTemplate {
    broker: Broker,
    users: Arc<UserRegistry>,
    cluster: Option<Arc<Cluster>>,
}

fn headers_with_type(headers: &Headers, payload: &Payload) -> Headers {
    let mut headers = headers.clone();
    if headers.get("content-type").is_none() {
        headers.push("content-type", payload.content_type.as_ref());
    }
    headers
}

impl MessagingTemplate {
    pub fn new(broker: Broker, users: Arc<UserRegistry>, cluster: Option<Arc<Cluster>>) -> Self {
        MessagingTemplate {
            broker,
            users,
            cluster,
        }
    }

    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// Serialises `payload` as JSON and publishes it; returns the number of deliveries.
    pub fn convert_and_send<T: Serialize + ?Sized>(
        &self,
        destination: &str,
        payload: &T,
    ) -> Result<usize, TemplateError> {
        self.send(destination, &Headers::new(), Payload::json(payload)?)
    }

    /// What [`MessagingTemplate::send`] would refuse about `destination`.
    pub(crate) fn check_broker_destination(&self, destination: &str) -> Result<(), TemplateError> {
        destination::validate(destination)?;
        if self.broker.prefixes().route(destination) != Route::Broker
            || destination::is_pattern(destination)
        {
            return Err(TemplateError::NotBrokerDestination(
                destination.to_owned(),
                self.broker.prefixes().broker_prefixes().join(", "),
            ));
        }
        Ok(())
    }

    /// Publishes a ready payload with extra headers to a broker destination.
    pub fn send(
        &self,
        destination: &str,
        headers: &Headers,
        payload: Payload,
    ) -> Result<usize, TemplateError> {
        self.check_broker_destination(destination)?;
        let headers = headers_with_type(headers, &payload);
        Ok(self.broker.publish(destination, &headers, payload.body))
    }

    /// Serialises `payload` as JSON and sends it to every session of `user` that
    /// subscribed to `/user{destination}`; returns the number of deliveries.
    pub fn convert_and_send_to_user<T: Serialize + ?Sized>(
        &self,
        user: &str,
        destination: &str,
        payload: &T,
    ) -> Result<usize, TemplateError> {
        self.send_to_user(user, destination, &Headers::new(), Payload::json(payload)?)
    }

    /// Sends to `user`'s sessions here and, with a cluster, on every other
    /// node; returns the deliveries made on this node.
    pub fn send_to_user(
        &self,
        user: &str,
        destination: &str,
        headers: &Headers,
        payload: Payload,
    ) -> Result<usize, TemplateError> {
        check_user_destination(destination)?;
        let headers = headers_with_type(headers, &payload);
        if let Some(cluster) = &self.cluster {
            cluster.forward(Forward::User {
                user: user.to_owned(),
                destination: destination.to_owned(),
                headers: headers.clone(),
                body: payload.body.clone(),
            });
        }
        Ok(UserDelivery::deliver_to_user_here(
            self,
            user,
            destination,
            &headers,
            payload.body,
        ))
    }

    /// Sends to one session's `/user{destination}` subscriptions (`session` as clients see it).
    pub fn send_to_session(
        &self,
        session: &str,
        destination: &str,
        headers: &Headers,
        payload: Payload,
    ) -> Result<usize, TemplateError> {
        check_user_destination(destination)?;
        let shown = user_destination::shown(destination);
        let headers = headers_with_type(headers, &payload);
        Ok(self.broker.publish_to(
            &session_key(session, destination),
            &shown,
            &headers,
            payload.body,
        ))
    }
}

/// Delivers to `user`'s sessions on this node only: the local half of
/// `send_to_user`, and where user messages from other nodes arrive.
/// `destination` was checked where it was sent.
impl UserDelivery for MessagingTemplate {
    fn deliver_to_user_here(
        &self,
        user: &str,
        destination: &str,
        headers: &Headers,
        body: bytes::Bytes,
    ) -> usize {
        let shown = user_destination::shown(destination);
        self.users
            .sessions_of(user)
            .iter()
            .map(|session| {
                self.broker.publish_to(
                    &session_key(session, destination),
                    &shown,
                    headers,
                    body.clone(),
                )
            })
            .sum()
    }
}
