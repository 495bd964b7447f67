//! One client's STOMP session as a state machine without I/O: frames in,
//! frames out through the session's [`Outbound`] queue, and a [`Flow`] telling
//! the transport whether to keep the connection. The same session serves every
//! transport, and tests drive it without sockets.

mod app_calls;
pub mod driver;
mod error;
pub mod heartbeat;
mod sessions;
mod wire;

use crate::broker::outbound::{Outbound, Outgoing};
pub use error::SessionError;
use heartbeat::HeartBeat;
pub use sessions::{SessionLimits, Sessions};
pub use wire::encode_outgoing;

use crate::app::AppRuntime;
use crate::app::events::{Event, EventKind};
use crate::app::handler::{Inbound, Payload, TEXT};
use crate::app::session_info::{Handshake, SessionInfo};
use crate::app::worker::{AppWorker, Job};
use crate::broker::Broker;
use crate::broker::destination::{self, Route};
use crate::broker::registry::{AckMode, Subscription};
use crate::broker::user_destination::{self, session_key};
use crate::security::{Action, AuthError, Identity};
use crate::stomp::{Command, Frame, Headers, Version, encoded_len_hint};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// Settings every session of a server shares.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// `(send every, expect every)` in milliseconds, as advertised in CONNECTED.
    pub heartbeat: (u64, u64),
    /// The fastest heart-beat interval a client may ask for, in milliseconds.
    pub heartbeat_min_ms: u64,
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

/// A subscription of this session: in the broker, or answered by a subscribe mapping.
#[derive(Debug)]
enum Subscribed {
    Broker(Arc<Subscription>),
    App,
}

/// A subscription waiting for the cluster, and the RECEIPT it owes.
struct PendingLive {
    wait: crate::broker::remote::LiveWait,
    receipt: Option<String>,
}

const SERVER_NAME: &str = concat!("stomphub/", env!("CARGO_PKG_VERSION"));

/// The ERROR frame for `error`: a one-line `message` header and a body with details.
pub fn error_frame(
    error: &SessionError,
    receipt: Option<String>,
    offending: Option<Command>,
) -> Frame {
    let mut frame = Frame::error(error.to_string(), receipt, offending);
    match error {
        SessionError::UnsupportedVersion { .. } => frame.headers.push("version", "1.0,1.1,1.2"),
        SessionError::AppRefused {
            code: Some(code), ..
        } => frame.headers.push("code", code.clone()),
        _ => {}
    }
    frame
}

pub struct Session {
    handshake: Handshake,
    info: Arc<SessionInfo>,
    broker: Broker,
    app: Arc<AppRuntime>,
    outbound: Arc<Outbound>,
    config: Arc<SessionConfig>,
    connected: Option<Connected>,
    subscriptions: HashMap<String, (Subscribed, String)>,
    transactions: HashMap<String, Transaction>,
    worker: Option<AppWorker>,
    /// Jobs that found the worker's queue full, in arrival order; the transport
    /// stops reading until [`Session::wait_for_app`] has handed them over.
    blocked: std::collections::VecDeque<Box<Job>>,
    /// The CONNECT credentials as the transport checked them, off the async
    /// workers; without it, [`Session::handle`] checks them itself.
    credentials: Option<Result<Option<Identity>, AuthError>>,
    /// The application's answer (`[proxy]`) about the frame being handled,
    /// fetched by the transport; see [`Session::app_call`].
    /// Boxed: an idle session keeps this field, and an answer is large.
    app_answer: Option<Box<app_calls::AppAnswer>>,
    /// A subscription not yet live on every node: its RECEIPT waits, and the
    /// transport reads nothing more until [`Session::wait_until_live`].
    /// Boxed, like the answer: idle sessions keep the field.
    pending_live: Option<Box<PendingLive>>,
    /// The error that ended the session, if one did.
    failure: Option<SessionError>,
    ended: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.info.id)
            .field("connected", &self.connected)
            .field("subscriptions", &self.subscriptions.len())
            .finish()
    }
}

fn required<'a>(frame: &'a Frame, header: &'static str) -> Result<&'a str, SessionError> {
    frame.get(header).ok_or(SessionError::MissingHeader {
        command: frame.command,
        header,
    })
}

/// Event headers never carry credentials.
fn event_headers(frame: &Frame) -> Headers {
    frame
        .headers
        .iter()
        .filter(|(name, _)| !matches!(*name, "passcode" | "Authorization" | "authorization"))
        .collect()
}

impl Session {
    pub fn new(
        handshake: Handshake,
        app: Arc<AppRuntime>,
        outbound: Arc<Outbound>,
        config: Arc<SessionConfig>,
    ) -> Self {
        let info = Arc::new(SessionInfo::new(&handshake, Identity::anonymous()));
        Session {
            handshake,
            info,
            broker: app.broker.clone(),
            app,
            outbound,
            config,
            connected: None,
            subscriptions: HashMap::new(),
            transactions: HashMap::new(),
            worker: None,
            blocked: std::collections::VecDeque::new(),
            credentials: None,
            app_answer: None,
            pending_live: None,
            failure: None,
            ended: false,
        }
    }

    /// The id sent in CONNECTED and used in logs.
    pub fn id(&self) -> &str {
        &self.info.id
    }

    pub fn info(&self) -> &Arc<SessionInfo> {
        &self.info
    }

    /// The negotiated version; `None` before CONNECT.
    pub fn version(&self) -> Option<Version> {
        self.connected.map(|c| c.version)
    }

    pub fn heartbeat(&self) -> HeartBeat {
        self.connected.map(|c| c.heartbeat).unwrap_or_default()
    }

    pub fn outbound(&self) -> &Arc<Outbound> {
        &self.outbound
    }

    pub fn subscription_count(&self) -> usize {
        self.subscriptions.len()
    }

    /// True when `frame` is the CONNECT whose credentials must be checked; the
    /// transport may check them with [`crate::security::Authenticator::connect_async`]
    /// and hand the verdict over with [`Session::set_credentials`].
    pub fn checks_credentials_of(&self, frame: &Frame) -> bool {
        self.connected.is_none()
            && self.handshake.user.is_none()
            && matches!(frame.command, Command::Connect | Command::Stomp)
            && !self.app_judges_connect()
    }

    /// The error that ended the session, if one did.
    pub fn failure(&self) -> Option<&SessionError> {
        self.failure.as_ref()
    }

    /// Checks CONNECT credentials; see [`Session::checks_credentials_of`].
    pub fn authenticator(&self) -> Arc<crate::security::Authenticator> {
        self.app.settings.auth.load_full()
    }

    pub fn set_credentials(&mut self, verdict: Result<Option<Identity>, AuthError>) {
        self.credentials = Some(verdict);
    }

    /// Handles one client frame.
    pub fn handle(&mut self, frame: Frame) -> Flow {
        let flow = self.handle_intercepted(frame);
        // An answer belongs to one frame, even one that failed before using it.
        self.app_answer = None;
        flow
    }

    fn handle_intercepted(&mut self, frame: Frame) -> Flow {
        let mut frame = frame;
        for interceptor in &self.app.channel {
            match interceptor.inbound(&self.info, frame) {
                Some(next) => frame = next,
                None => return Flow::Continue,
            }
        }
        let receipt = match frame.command {
            Command::Connect | Command::Stomp => None,
            _ => frame.get("receipt").map(str::to_owned),
        };
        let command = frame.command;
        match self.process(frame) {
            Ok(flow) => {
                match &mut self.pending_live {
                    // The RECEIPT promises the subscription is live everywhere.
                    Some(pending) => pending.receipt = receipt,
                    None => {
                        if let Some(receipt) = receipt {
                            self.reply(Frame::new(Command::Receipt).header("receipt-id", receipt));
                        }
                    }
                }
                flow
            }
            Err(error) => self.fail_with(&error, receipt, Some(command)),
        }
    }

    /// Whether the last SUBSCRIBE waits to be live on every node.
    pub fn is_waiting_until_live(&self) -> bool {
        self.pending_live.is_some()
    }

    /// Waits until the last SUBSCRIBE is live on every node, then sends its
    /// RECEIPT; past `cluster.command_timeout_ms`, an ERROR and `Flow::Close`.
    pub async fn wait_until_live(&mut self) -> Flow {
        let Some(pending) = self.pending_live.take() else {
            return Flow::Continue;
        };
        let PendingLive { wait, receipt } = *pending;
        match wait.await {
            Ok(()) => {
                if let Some(receipt) = receipt {
                    self.reply(Frame::new(Command::Receipt).header("receipt-id", receipt));
                }
                Flow::Continue
            }
            Err(not_live) => self.fail_with(
                &SessionError::NotLive(not_live),
                receipt,
                Some(Command::Subscribe),
            ),
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
        if error.is_policy() {
            let remote = self
                .handshake
                .remote
                .map(|r| r.to_string())
                .unwrap_or_default();
            let user = self.info.user.as_deref().unwrap_or_default();
            tracing::warn!(session = %self.info.id, %remote, %user, %error, "session refused");
        } else {
            tracing::debug!(session = %self.info.id, %error, "protocol error");
        }
        self.failure.get_or_insert_with(|| error.clone());
        Flow::Close
    }

    fn reply(&self, frame: Frame) {
        let size = encoded_len_hint(&frame);
        self.outbound.push(Outgoing::Frame(frame), size);
    }

    fn emit(
        &self,
        kind: EventKind,
        frame: Option<&Frame>,
        destination: Option<&str>,
        subscription: Option<&str>,
    ) {
        self.app.events.emit(|| Event {
            kind,
            session: self.info.clone(),
            destination: destination.map(str::to_owned),
            subscription: subscription.map(str::to_owned),
            headers: frame.map(event_headers).unwrap_or_default(),
            reason: None,
        });
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
        let heartbeat = heartbeat::negotiate(
            client_heartbeat,
            self.config.heartbeat,
            self.config.heartbeat_min_ms,
        );
        let (identity, data) = match self.app_judges_connect() {
            true => self.identify_by_app(frame)?,
            false => (self.identify(frame)?, None),
        };
        // The connected session's info is the one that lives on: it takes the
        // handshake's attributes rather than a third copy of them.
        let attributes = std::mem::take(&mut self.handshake.attributes);
        let mut info = SessionInfo::with_attributes(&self.handshake, identity, attributes);
        info.data = data.map(Arc::new);
        self.info = Arc::new(info);
        self.connected = Some(Connected { version, heartbeat });
        if let Some(user) = &self.info.user {
            self.app
                .users
                .add(user, self.handshake.session, &self.info.id);
        }
        self.app
            .directory
            .add(self.info.clone(), Arc::downgrade(&self.outbound));
        self.emit(EventKind::Connect, Some(frame), None, None);
        let mut reply = Frame::new(Command::Connected)
            .header("version", version.as_str())
            .header("session", self.info.id.clone())
            .header("server", SERVER_NAME);
        if version != Version::V1_0 {
            reply
                .headers
                .push("heart-beat", heartbeat::header_value(&heartbeat));
        }
        if let Some(user) = &self.info.user {
            reply.headers.push("user-name", user.clone());
        }
        self.reply(reply);
        self.emit(EventKind::Connected, None, None, None);
        Ok(())
    }

    /// Who the session is: the handshake's user (an interceptor or a token),
    /// else the CONNECT credentials, else anonymous when allowed.
    fn identify(&mut self, frame: &Frame) -> Result<Identity, SessionError> {
        if let Some(user) = &self.handshake.user {
            if self.handshake.user_is_claimed {
                return Ok(Identity::claimed(user.clone()));
            }
            return Ok(Identity::verified(
                user.clone(),
                self.handshake.roles.clone(),
            ));
        }
        let auth = self.app.settings.auth.load();
        let verdict = match self.credentials.take() {
            Some(verdict) => verdict,
            None => auth.connect(&frame.headers),
        };
        match verdict? {
            Some(identity) => Ok(identity),
            None if !auth.allows_anonymous() => Err(AuthError::Required.into()),
            None => Ok(match frame.get("login").filter(|login| !login.is_empty()) {
                Some(login) if self.app.settings.user_from_login => {
                    Identity::claimed(login.to_owned())
                }
                _ => Identity::anonymous(),
            }),
        }
    }

    fn check_access(&self, action: Action, destination: &str) -> Result<(), SessionError> {
        self.app
            .settings
            .access
            .load()
            .check(action, destination, self.info.subject())
            .map_err(SessionError::from)
    }

    /// The destination below its application prefix (`/app/v1/chat` -> `/v1/chat`).
    fn app_path<'a>(&self, destination: &'a str) -> &'a str {
        self.broker
            .prefixes()
            .app_path(destination)
            .unwrap_or(destination)
    }

    fn unknown_prefix(&self, destination: &str) -> SessionError {
        let prefixes = self.broker.prefixes();
        SessionError::UnknownPrefix {
            destination: destination.to_owned(),
            broker: prefixes.broker_prefixes().join(", "),
            app: prefixes.app_prefixes().join(", "),
        }
    }

    /// Checks that a SEND can be delivered, before it is dispatched or held in a transaction.
    fn check_send(&self, frame: &Frame) -> Result<(), SessionError> {
        let destination = required(frame, "destination")?;
        destination::validate(destination)?;
        if destination::is_pattern(destination) {
            return Err(SessionError::PatternSend(destination.to_owned()));
        }
        self.check_access(Action::Send, destination)?;
        match self.broker.prefixes().route(destination) {
            Route::Broker => Ok(()),
            Route::App => {
                let path = self.app_path(destination);
                match self.app.router.find_message(path) {
                    Some(_) => Ok(()),
                    None => Err(SessionError::NoHandler(destination.to_owned())),
                }
            }
            Route::User => match user_destination::send_target(destination) {
                Some(_) => Ok(()),
                None => Err(SessionError::BadUserDestination(destination.to_owned())),
            },
            Route::Unknown => Err(self.unknown_prefix(destination)),
        }
    }

    /// Delivers a checked SEND: to the broker, a handler, or a user's sessions.
    fn dispatch(&mut self, frame: Frame) -> Result<(), SessionError> {
        let destination = required(&frame, "destination")?.to_owned();
        match self.broker.prefixes().route(&destination) {
            Route::Broker => {
                self.broker
                    .publish(&destination, &frame.headers, frame.body);
            }
            Route::App => {
                let path = self.app_path(&destination).to_owned();
                let (mapping, vars) = self
                    .app
                    .router
                    .find_message(&path)
                    .ok_or_else(|| SessionError::NoHandler(destination.clone()))?;
                let inbound = Inbound {
                    destination,
                    vars,
                    headers: frame.headers,
                    body: frame.body,
                    session: self.info.clone(),
                    template: self.app.template.clone(),
                };
                self.submit(Job::Message {
                    mapping,
                    path,
                    inbound,
                })?;
            }
            Route::User => {
                let (user, target) = user_destination::send_target(&destination)
                    .ok_or_else(|| SessionError::BadUserDestination(destination.clone()))?;
                let payload = Payload {
                    body: frame.body.clone(),
                    content_type: Cow::Borrowed(TEXT),
                };
                self.app
                    .template
                    .send_to_user(user, target, &frame.headers, payload)
                    .map_err(|e| SessionError::Template(e.to_string()))?;
            }
            Route::Unknown => return Err(self.unknown_prefix(&destination)),
        }
        Ok(())
    }

    fn submit(&mut self, job: Job) -> Result<(), SessionError> {
        let capacity = self.app.settings.max_pending_app_messages;
        let worker = self.worker.get_or_insert_with(|| {
            AppWorker::start(self.app.clone(), self.outbound.clone(), capacity)
        });
        if !self.blocked.is_empty() {
            self.blocked.push_back(Box::new(job));
        } else if let Err(job) = worker.try_submit(job) {
            self.blocked.push_back(job);
        }
        Ok(())
    }

    /// True when handler jobs wait for room: the transport must call
    /// [`Session::wait_for_app`] before handing over the next frame.
    pub fn is_waiting_for_app(&self) -> bool {
        !self.blocked.is_empty()
    }

    /// Hands blocked jobs to the worker as it makes room (backpressure on a client
    /// that sends to `/app` faster than its handlers run).
    pub async fn wait_for_app(&mut self) {
        let Some(worker) = &self.worker else {
            self.blocked.clear();
            return;
        };
        while let Some(job) = self.blocked.pop_front() {
            worker.submit(*job).await;
        }
    }

    fn send(&mut self, frame: Frame) -> Result<Flow, SessionError> {
        self.check_send(&frame)?;
        if let Some(name) = frame.get("transaction")
            && !self.transactions.contains_key(name)
        {
            return Err(SessionError::UnknownTransaction(name.to_owned()));
        }
        // Judged as it is sent, also inside a transaction: what is held is what
        // the application allowed (and rewrote).
        let frame = self.apply_app_publish_answer(frame)?;
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
        self.dispatch(frame)?;
        Ok(Flow::Continue)
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
        self.check_access(Action::Subscribe, destination)?;
        if self.subscriptions.contains_key(id) {
            return Err(SessionError::DuplicateSubscription(id.to_owned()));
        }
        if self.subscriptions.len() >= self.config.max_subscriptions {
            return Err(SessionError::TooManySubscriptions(
                self.config.max_subscriptions,
            ));
        }
        let initial = self.app_subscribe_answer(destination)?;
        let route = self.broker.prefixes().route(destination);
        let is_user = route == Route::User;
        let key = match route {
            Route::Broker => destination.to_owned(),
            Route::User => {
                let below = user_destination::below_prefix(destination)
                    .ok_or_else(|| SessionError::BadUserDestination(destination.to_owned()))?;
                session_key(&self.info.id, below)
            }
            Route::App => {
                // A subscribe mapping is one destination, not a family of them.
                if destination::is_pattern(destination) {
                    return Err(SessionError::PatternAppSubscription(destination.to_owned()));
                }
                let path = self.app_path(destination);
                let (mapping, vars) = self
                    .app
                    .router
                    .find_subscription(path)
                    .ok_or_else(|| SessionError::NoSubscribeMapping(destination.to_owned()))?;
                let inbound = Inbound {
                    destination: destination.to_owned(),
                    vars,
                    headers: frame.headers.clone(),
                    body: frame.body.clone(),
                    session: self.info.clone(),
                    template: self.app.template.clone(),
                };
                if let Some(initial) = initial {
                    self.push_initial_message(id, destination, ack, initial);
                }
                self.submit(Job::Subscribe {
                    mapping,
                    inbound,
                    subscription: id.to_owned(),
                })?;
                self.track_subscription(frame, id, Subscribed::App, destination);
                return Ok(Flow::Continue);
            }
            Route::Unknown => return Err(self.unknown_prefix(destination)),
        };
        let subscription = Arc::new(Subscription {
            session: self.handshake.session,
            id: id.into(),
            destination: key.into(),
            ack,
            outbound: self.outbound.clone(),
        });
        let since = match frame.get("since") {
            None => None,
            Some(text) => Some(
                text.parse::<crate::stomp::Position>()
                    .map_err(|_| SessionError::BadSince(text.to_owned()))?,
            ),
        };
        if let Some(initial) = initial {
            self.push_initial_message(id, destination, ack, initial);
        }
        self.broker
            .subscribe_replaying(subscription.clone(), since)?;
        let live = if is_user {
            self.info
                .user
                .as_deref()
                .and_then(|user| self.app.users.until_live(user))
        } else {
            self.broker.until_live(&subscription.destination)
        };
        self.pending_live = live.map(|wait| {
            Box::new(PendingLive {
                wait,
                receipt: None,
            })
        });
        self.track_subscription(frame, id, Subscribed::Broker(subscription), destination);
        Ok(Flow::Continue)
    }

    fn track_subscription(
        &mut self,
        frame: &Frame,
        id: &str,
        subscribed: Subscribed,
        destination: &str,
    ) {
        self.subscriptions
            .insert(id.to_owned(), (subscribed, destination.to_owned()));
        self.info.add_subscription(id, destination);
        self.emit(
            EventKind::Subscribe,
            Some(frame),
            Some(destination),
            Some(id),
        );
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
        if let Some((subscribed, destination)) = self.subscriptions.remove(id) {
            if let Subscribed::Broker(subscription) = subscribed {
                self.broker.unsubscribe(&subscription);
            }
            self.info.remove_subscription(id);
            self.emit(
                EventKind::Unsubscribe,
                Some(frame),
                Some(&destination),
                Some(id),
            );
        }
        Ok(Flow::Continue)
    }

    /// In-memory topics deliver at most once, so ACK and NACK change nothing;
    /// they are still checked: required headers, a subscription that acknowledges,
    /// a message id this broker issued, a known transaction, and receipts.
    fn acknowledge(&mut self, frame: &Frame, version: Version) -> Result<Flow, SessionError> {
        let id = match version {
            Version::V1_2 => required(frame, "id")?,
            Version::V1_1 | Version::V1_0 => required(frame, "message-id")?,
        };
        let unknown = |why| SessionError::UnknownAck {
            command: frame.command,
            id: id.to_owned(),
            why,
        };
        let acknowledging = |subscribed: &Subscribed| matches!(subscribed, Subscribed::Broker(s) if s.ack != AckMode::Auto);
        if version == Version::V1_1 {
            let subscription = required(frame, "subscription")?;
            match self.subscriptions.get(subscription) {
                Some((subscribed, _)) if acknowledging(subscribed) => {}
                Some(_) => return Err(unknown("that subscription uses ack:auto")),
                None => return Err(unknown("no such subscription")),
            }
        } else if !self.subscriptions.values().any(|(s, _)| acknowledging(s)) {
            return Err(unknown(
                "this session has no ack:client or ack:client-individual subscription",
            ));
        }
        if !self.broker.issued_message_id(id) {
            return Err(unknown("no message was sent with that id"));
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
            self.dispatch(held)?;
        }
        Ok(Flow::Continue)
    }

    fn abort(&mut self, frame: &Frame) -> Result<Flow, SessionError> {
        self.take_transaction(frame)?;
        Ok(Flow::Continue)
    }

    /// Releases every subscription, drops open transactions and, for a session
    /// that had connected, fires its one Disconnect event. Idempotent.
    pub fn end(&mut self, reason: &str) {
        if self.ended {
            return;
        }
        self.ended = true;
        for (_, (subscribed, _)) in self.subscriptions.drain() {
            if let Subscribed::Broker(subscription) = subscribed {
                self.broker.unsubscribe(&subscription);
            }
        }
        self.transactions.clear();
        self.outbound.close();
        self.blocked.clear();
        self.worker = None;
        if self.connected.is_some() {
            if let Some(user) = &self.info.user {
                self.app.users.remove(user, self.handshake.session);
            }
            self.app.directory.remove(self.handshake.session);
            self.app.events.emit(|| Event {
                kind: EventKind::Disconnect,
                session: self.info.clone(),
                destination: None,
                subscription: None,
                headers: Headers::new(),
                reason: Some(reason.to_owned()),
            });
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.end("session dropped");
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
