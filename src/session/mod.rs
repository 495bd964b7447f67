//! One client's STOMP session as a state machine without I/O: frames in,
//! frames out through the session's [`Outbound`] queue, and a [`Flow`] telling
//! the transport whether to keep the connection. The same session serves every
//! transport, and tests drive it without sockets.

mod error;
pub mod heartbeat;
pub mod outbound;
mod wire;

pub use error::SessionError;
use heartbeat::HeartBeat;
use outbound::{Outbound, Outgoing};
pub use wire::encode_outgoing;

use crate::broker::Broker;
use crate::broker::destination::{self, Route};
use crate::broker::registry::{AckMode, SessionId, Subscription};
use crate::stomp::{Command, Frame, Version, encoded_len_hint};
use std::collections::HashMap;
use std::sync::Arc;

/// Settings every session of a server shares.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// `(send every, expect every)` in milliseconds, as advertised in CONNECTED.
    pub heartbeat: (u64, u64),
    pub max_subscriptions: usize,
    pub max_transactions: usize,
    pub max_transaction_bytes: usize,
}

/// What the transport does after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Write what is queued (an ERROR or RECEIPT may be last), then close.
    Close,
}

#[derive(Debug, Clone, Copy)]
struct Connected {
    version: Version,
    heartbeat: HeartBeat,
}

#[derive(Debug, Default)]
struct Transaction {
    held: Vec<Frame>,
    bytes: usize,
}

/// The ERROR frame for `error`: a one-line `message` header and a body with details.
pub fn error_frame(
    error: &SessionError,
    receipt: Option<String>,
    offending: Option<Command>,
) -> Frame {
    let message = error.to_string();
    let mut frame = Frame::new(Command::Error)
        .header("message", message.clone())
        .header("content-type", "text/plain");
    if let Some(receipt) = receipt {
        frame.headers.push("receipt-id", receipt);
    }
    if let SessionError::UnsupportedVersion { .. } = error {
        frame.headers.push("version", "1.0,1.1,1.2");
    }
    let body = match offending {
        Some(command) => format!("{message}\n\nThe offending frame was a {command} frame."),
        None => message,
    };
    frame.body(body)
}

const SERVER_NAME: &str = concat!("stomphub/", env!("CARGO_PKG_VERSION"));

#[derive(Debug)]
pub struct Session {
    id: SessionId,
    id_text: String,
    broker: Broker,
    outbound: Arc<Outbound>,
    config: Arc<SessionConfig>,
    connected: Option<Connected>,
    subscriptions: HashMap<Arc<str>, Arc<Subscription>>,
    transactions: HashMap<String, Transaction>,
}

fn required<'a>(frame: &'a Frame, header: &'static str) -> Result<&'a str, SessionError> {
    frame.get(header).ok_or(SessionError::MissingHeader {
        command: frame.command,
        header,
    })
}

impl Session {
    pub fn new(
        id: SessionId,
        broker: Broker,
        outbound: Arc<Outbound>,
        config: Arc<SessionConfig>,
    ) -> Self {
        Session {
            id,
            id_text: format!("{id:08x}"),
            broker,
            outbound,
            config,
            connected: None,
            subscriptions: HashMap::new(),
            transactions: HashMap::new(),
        }
    }

    /// The id sent in CONNECTED and used in logs.
    pub fn id(&self) -> &str {
        &self.id_text
    }

    /// The negotiated version; `None` before CONNECT.
    pub fn version(&self) -> Option<Version> {
        self.connected.map(|c| c.version)
    }

    pub fn heartbeat(&self) -> HeartBeat {
        self.connected.map(|c| c.heartbeat).unwrap_or_default()
    }

    pub fn subscription_count(&self) -> usize {
        self.subscriptions.len()
    }

    /// Handles one client frame.
    pub fn handle(&mut self, frame: Frame) -> Flow {
        let receipt = match frame.command {
            Command::Connect | Command::Stomp => None,
            _ => frame.get("receipt").map(str::to_owned),
        };
        let command = frame.command;
        match self.process(frame) {
            Ok(flow) => {
                if let Some(receipt) = receipt {
                    self.reply(Frame::new(Command::Receipt).header("receipt-id", receipt));
                }
                flow
            }
            Err(error) => self.fail_with(&error, receipt, Some(command)),
        }
    }

    /// Ends the session for a reason found outside a frame (bad bytes, timeout).
    pub fn fail(&mut self, error: &SessionError) -> Flow {
        self.fail_with(error, None, None)
    }

    fn fail_with(
        &mut self,
        error: &SessionError,
        receipt: Option<String>,
        offending: Option<Command>,
    ) -> Flow {
        self.reply(error_frame(error, receipt, offending));
        tracing::debug!(session = %self.id_text, %error, "protocol error");
        Flow::Close
    }

    pub fn outbound(&self) -> &Arc<Outbound> {
        &self.outbound
    }

    fn reply(&self, frame: Frame) {
        let size = encoded_len_hint(&frame);
        self.outbound.push(Outgoing::Frame(frame), size);
    }

    fn process(&mut self, frame: Frame) -> Result<Flow, SessionError> {
        let Some(connected) = self.connected else {
            return match frame.command {
                Command::Connect | Command::Stomp => self.connect(&frame).map(|()| Flow::Continue),
                other => Err(SessionError::NotConnected(other)),
            };
        };
        match frame.command {
            Command::Connect | Command::Stomp => Err(SessionError::AlreadyConnected),
            Command::Send => self.send(frame),
            Command::Subscribe => self.subscribe(&frame, connected.version),
            Command::Unsubscribe => self.unsubscribe(&frame, connected.version),
            Command::Ack | Command::Nack => self.acknowledge(&frame, connected.version),
            Command::Begin => self.begin(&frame),
            Command::Commit => self.commit(&frame),
            Command::Abort => self.abort(&frame),
            Command::Disconnect => Ok(Flow::Close),
            server
            @ (Command::Connected | Command::Message | Command::Receipt | Command::Error) => {
                Err(SessionError::ServerCommand(server))
            }
        }
    }

    fn connect(&mut self, frame: &Frame) -> Result<(), SessionError> {
        let version = match frame.get("accept-version") {
            None => Version::V1_0,
            Some(offered) => offered
                .split(',')
                .filter_map(|v| Version::parse(v.trim()))
                .max()
                .ok_or_else(|| SessionError::UnsupportedVersion {
                    offered: offered.to_owned(),
                })?,
        };
        let client_heartbeat = match (version, frame.get("heart-beat")) {
            (Version::V1_0, _) | (_, None) => (0, 0),
            (_, Some(value)) => heartbeat::parse(value)
                .ok_or_else(|| SessionError::BadHeartBeat(value.to_owned()))?,
        };
        let heartbeat = heartbeat::negotiate(client_heartbeat, self.config.heartbeat);
        self.connected = Some(Connected { version, heartbeat });
        let mut reply = Frame::new(Command::Connected)
            .header("version", version.as_str())
            .header("session", self.id_text.clone())
            .header("server", SERVER_NAME);
        if version != Version::V1_0 {
            let (sx, sy) = self.config.heartbeat;
            reply.headers.push("heart-beat", format!("{sx},{sy}"));
        }
        self.reply(reply);
        Ok(())
    }

    /// Checks that `destination` can take a SEND, before it is published or held.
    fn check_send_destination(&self, destination: &str) -> Result<(), SessionError> {
        destination::validate(destination)?;
        if destination::is_pattern(destination) {
            return Err(SessionError::PatternSend(destination.to_owned()));
        }
        match self.broker.prefixes().route(destination) {
            Route::Broker => Ok(()),
            Route::App => Err(SessionError::NoHandler(destination.to_owned())),
            Route::Unknown => Err(self.unknown_prefix(destination)),
        }
    }

    fn unknown_prefix(&self, destination: &str) -> SessionError {
        let prefixes = self.broker.prefixes();
        SessionError::UnknownPrefix {
            destination: destination.to_owned(),
            broker: prefixes.broker_prefixes().join(", "),
            app: prefixes.app_prefixes().join(", "),
        }
    }

    fn send(&mut self, frame: Frame) -> Result<Flow, SessionError> {
        self.check_send_destination(required(&frame, "destination")?)?;
        if let Some(name) = frame.get("transaction") {
            let limit = self.config.max_transaction_bytes;
            let transaction = self
                .transactions
                .get_mut(name)
                .ok_or_else(|| SessionError::UnknownTransaction(name.to_owned()))?;
            transaction.bytes += encoded_len_hint(&frame);
            if transaction.bytes > limit {
                return Err(SessionError::TransactionTooLarge {
                    transaction: name.to_owned(),
                    limit,
                });
            }
            transaction.held.push(frame);
            return Ok(Flow::Continue);
        }
        self.publish(&frame);
        Ok(Flow::Continue)
    }

    fn publish(&self, frame: &Frame) {
        if let Some(destination) = frame.get("destination") {
            self.broker
                .publish(destination, &frame.headers, frame.body.clone());
        }
    }

    fn subscribe(&mut self, frame: &Frame, version: Version) -> Result<Flow, SessionError> {
        let destination = required(frame, "destination")?;
        let id = match (frame.get("id"), version) {
            (Some(id), _) => id,
            // STOMP 1.0 makes the id optional; the destination then names the subscription.
            (None, Version::V1_0) => destination,
            (None, _) => {
                return Err(SessionError::MissingHeader {
                    command: frame.command,
                    header: "id",
                });
            }
        };
        let ack = match frame.get("ack") {
            None => AckMode::Auto,
            Some(mode) => {
                AckMode::parse(mode).ok_or_else(|| SessionError::BadAckMode(mode.to_owned()))?
            }
        };
        destination::validate(destination)?;
        match self.broker.prefixes().route(destination) {
            Route::Broker => {}
            Route::App => return Err(SessionError::NoHandler(destination.to_owned())),
            Route::Unknown => return Err(self.unknown_prefix(destination)),
        }
        if self.subscriptions.contains_key(id) {
            return Err(SessionError::DuplicateSubscription(id.to_owned()));
        }
        if self.subscriptions.len() >= self.config.max_subscriptions {
            return Err(SessionError::TooManySubscriptions(
                self.config.max_subscriptions,
            ));
        }
        let subscription = Arc::new(Subscription {
            session: self.id,
            id: id.into(),
            destination: destination.into(),
            ack,
            outbound: self.outbound.clone(),
        });
        self.broker.subscribe(subscription.clone())?;
        self.subscriptions
            .insert(subscription.id.clone(), subscription);
        Ok(Flow::Continue)
    }

    /// Removes a subscription. An unknown id is not an error: clients may
    /// unsubscribe twice while racing a reconnect, as Spring also tolerates.
    fn unsubscribe(&mut self, frame: &Frame, version: Version) -> Result<Flow, SessionError> {
        let id = match (frame.get("id"), version) {
            (Some(id), _) => id,
            (None, Version::V1_0) => required(frame, "destination")?,
            (None, _) => {
                return Err(SessionError::MissingHeader {
                    command: frame.command,
                    header: "id",
                });
            }
        };
        if let Some(subscription) = self.subscriptions.remove(id) {
            self.broker.unsubscribe(&subscription);
        }
        Ok(Flow::Continue)
    }

    /// In-memory topics deliver at most once, so ACK and NACK change nothing;
    /// they are still checked for their required headers and honour receipts.
    fn acknowledge(&mut self, frame: &Frame, version: Version) -> Result<Flow, SessionError> {
        match version {
            Version::V1_2 => {
                required(frame, "id")?;
            }
            Version::V1_1 => {
                required(frame, "message-id")?;
                required(frame, "subscription")?;
            }
            Version::V1_0 => {
                required(frame, "message-id")?;
            }
        }
        if let Some(name) = frame.get("transaction")
            && !self.transactions.contains_key(name)
        {
            return Err(SessionError::UnknownTransaction(name.to_owned()));
        }
        Ok(Flow::Continue)
    }

    fn begin(&mut self, frame: &Frame) -> Result<Flow, SessionError> {
        let name = required(frame, "transaction")?;
        if self.transactions.contains_key(name) {
            return Err(SessionError::DuplicateTransaction(name.to_owned()));
        }
        if self.transactions.len() >= self.config.max_transactions {
            return Err(SessionError::TooManyTransactions(
                self.config.max_transactions,
            ));
        }
        self.transactions
            .insert(name.to_owned(), Transaction::default());
        Ok(Flow::Continue)
    }

    fn take_transaction(&mut self, frame: &Frame) -> Result<Transaction, SessionError> {
        let name = required(frame, "transaction")?;
        self.transactions
            .remove(name)
            .ok_or_else(|| SessionError::UnknownTransaction(name.to_owned()))
    }

    fn commit(&mut self, frame: &Frame) -> Result<Flow, SessionError> {
        for held in self.take_transaction(frame)?.held {
            self.publish(&held);
        }
        Ok(Flow::Continue)
    }

    fn abort(&mut self, frame: &Frame) -> Result<Flow, SessionError> {
        self.take_transaction(frame)?;
        Ok(Flow::Continue)
    }

    /// Releases every subscription and drops open transactions. Idempotent.
    pub fn end(&mut self) {
        for (_, subscription) in self.subscriptions.drain() {
            self.broker.unsubscribe(&subscription);
        }
        self.transactions.clear();
        self.outbound.close();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.end();
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
