//! The session's side of `[proxy]`: which frames the user's application judges,
//! the requests that describe them, and what its answers do to the session.
//! The transport makes the call ([`Session::app_call`]) before it hands the
//! frame over, so the state machine itself stays free of I/O.

use super::{Session, SessionError, heartbeat};
use crate::app::proxied_route::describe_session;
use crate::broker::destination::{self, Route};
use crate::broker::outbound::Outgoing;
use crate::broker::registry::AckMode;
use crate::proxy::{Answer, Call, Content, PendingCall, ProxyError, Request};
use crate::security::{Action, AuthError, Identity};
use crate::stomp::{Command, Frame, Headers, Version};
use std::collections::BTreeMap;

/// The application's answer and the frame it was about, so that an answer is
/// never applied to another frame (a `ChannelInterceptor` may rewrite one).
#[derive(Debug)]
pub(super) struct AppAnswer {
    command: Command,
    destination: Option<String>,
    answer: Result<Answer, ProxyError>,
}

impl Session {
    /// The call to the application `frame` needs before [`Session::handle`],
    /// if any; its answer goes to [`Session::set_app_answer`]. Frames the
    /// session will refuse anyway (an `[[acl]]` rule, a bad header, a limit)
    /// are not sent to the application.
    pub fn app_call(&self, frame: &Frame) -> Option<PendingCall> {
        let proxy = self.app.settings.proxy.as_ref()?;
        let request = match (frame.command, self.connected) {
            (Command::Connect | Command::Stomp, None) if proxy.judges_connect() => {
                if !connect_is_well_formed(frame) {
                    return None;
                }
                self.connect_request(frame)
            }
            (Command::Subscribe, Some(connected)) => {
                let destination = frame.get("destination")?;
                let id = match (frame.get("id"), connected.version) {
                    (Some(id), _) => id,
                    (None, Version::V1_0) => destination,
                    (None, _) => return None,
                };
                // Whether the application judges it first: the session's own
                // checks then run once per frame, not twice, where it does not.
                let refused = !self.app_judges_subscribe(destination)
                    || destination::validate(destination).is_err()
                    || self.subscriptions.contains_key(id)
                    || self.subscriptions.len() >= self.config.max_subscriptions
                    || self.check_access(Action::Subscribe, destination).is_err();
                if refused {
                    return None;
                }
                Request {
                    destination: Some(destination),
                    subscription: Some(id),
                    headers: Request::frame_headers(&frame.headers, &[]),
                    ..describe_session(Call::Subscribe, &self.info)
                }
            }
            (Command::Send, Some(_)) => {
                let destination = frame.get("destination")?;
                let unknown_transaction = frame
                    .get("transaction")
                    .is_some_and(|name| !self.transactions.contains_key(name));
                if !self.app_judges_publish(destination)
                    || unknown_transaction
                    || self.check_send(frame).is_err()
                {
                    return None;
                }
                Request {
                    destination: Some(destination),
                    headers: Request::frame_headers(&frame.headers, &[]),
                    ..describe_session(Call::Publish, &self.info)
                }
                .with_body(&frame.body)
            }
            _ => return None,
        };
        let call = match frame.command {
            Command::Subscribe => Call::Subscribe,
            Command::Send => Call::Publish,
            _ => Call::Connect,
        };
        Some(proxy.ask(call, &request))
    }

    /// What the connect call says: the credentials, the opening request's
    /// headers, and who the handshake proved. A name the client only claimed
    /// (an SSE user stream, a plain endpoint's path) is `claimed_user`, not `user`.
    fn connect_request<'a>(&'a self, frame: &'a Frame) -> Request<'a> {
        let mut http_headers = BTreeMap::new();
        for (name, value) in &self.handshake.http_headers {
            http_headers.insert(name.as_str(), value.as_str());
        }
        let (user, claimed_user) = match self.handshake.user_is_claimed {
            true => (None, self.handshake.user.as_deref()),
            false => (self.handshake.user.as_deref(), None),
        };
        Request {
            user,
            claimed_user,
            roles: &self.handshake.roles,
            login: Some(frame.get("login")),
            passcode: Some(frame.get("passcode")),
            http_headers: Some(http_headers),
            headers: Request::frame_headers(&frame.headers, &["passcode"]),
            ..describe_session(Call::Connect, &self.info)
        }
    }

    /// The application's answer about `frame`, which [`Session::handle`] gets next.
    pub fn set_app_answer(&mut self, frame: &Frame, answer: Result<Answer, ProxyError>) {
        self.app_answer = Some(Box::new(AppAnswer {
            command: frame.command,
            destination: frame.get("destination").map(str::to_owned),
            answer,
        }));
    }

    /// Asks the application about `frame` when it must, then handles it: for
    /// frames a transport makes up itself (SSE, plain WebSocket endpoints).
    pub async fn handle_after_app(&mut self, frame: Frame) -> super::Flow {
        if let Some(call) = self.app_call(&frame) {
            let answer = call.await;
            self.set_app_answer(&frame, answer);
        }
        let flow = self.handle(frame);
        if flow == super::Flow::Continue && self.is_waiting_until_live() {
            return self.wait_until_live().await;
        }
        flow
    }

    /// Handles a frame the broker makes up for its own use (a plain
    /// endpoint's handler queue), which is not the application's to judge.
    pub fn handle_internal(&mut self, frame: Frame) -> super::Flow {
        self.set_app_answer(&frame, Ok(Answer::default()));
        let flow = self.handle(frame);
        // Nothing was promised on it: a handler's queue is this session's own.
        self.pending_live = None;
        flow
    }

    pub(super) fn app_judges_connect(&self) -> bool {
        self.app
            .settings
            .proxy
            .as_ref()
            .is_some_and(|proxy| proxy.judges_connect())
    }

    fn app_judges_subscribe(&self, destination: &str) -> bool {
        self.app
            .settings
            .proxy
            .as_ref()
            .is_some_and(|proxy| proxy.judges_subscribe(destination))
    }

    /// Only SENDs the broker delivers: an `/app` SEND goes to its handler,
    /// which may itself be the application (`[[route]] proxy`).
    fn app_judges_publish(&self, destination: &str) -> bool {
        self.app
            .settings
            .proxy
            .as_ref()
            .is_some_and(|proxy| proxy.judges_publish(destination))
            && matches!(
                self.broker.prefixes().route(destination),
                Route::Broker | Route::User
            )
    }

    /// The allowing answer about the frame being handled; `None` when the
    /// application is not asked about it. A refusal or a failed call is the
    /// session's error. A frame that should have been asked and was not, or
    /// whose answer was about another frame, is refused, so that nothing
    /// reaches the broker without the application's say.
    fn take_app_answer(
        &mut self,
        call: Call,
        asked: bool,
        frame: (Command, Option<&str>),
    ) -> Result<Option<Answer>, SessionError> {
        let answer = self.app_answer.take();
        if !asked {
            return Ok(None);
        }
        let (command, destination) = frame;
        let answer = match answer {
            Some(answer)
                if answer.command == command && answer.destination.as_deref() == destination =>
            {
                answer.answer
            }
            Some(other) => {
                return Err(SessionError::AppNotAsked {
                    key: call.key(),
                    why: format!(
                        "its answer was about {:?}; was the destination rewritten by a ChannelInterceptor?",
                        other.destination.unwrap_or_default()
                    ),
                });
            }
            None => {
                return Err(SessionError::AppNotAsked {
                    key: call.key(),
                    why: "no answer reached the session".into(),
                });
            }
        };
        match answer {
            Err(error) => {
                tracing::warn!(session = %self.info.id, %error, url = error.url().unwrap_or_default(), "call to the application failed");
                Err(error.into())
            }
            Ok(answer) if !answer.allow => Err(SessionError::AppRefused {
                message: answer.refusal().to_owned(),
                code: answer.code,
            }),
            Ok(answer) => Ok(Some(answer)),
        }
    }

    /// Who the application says the session is, and the data it keeps with
    /// it. Without a user in the answer, a user the handshake proved (a
    /// token, an interceptor) stands; a name the client only claimed does
    /// not: the application must name it. A session without a user is
    /// refused where `[auth] anonymous = false`.
    pub(super) fn identify_by_app(
        &mut self,
        frame: &Frame,
    ) -> Result<(Identity, Option<serde_json::Value>), SessionError> {
        let answer = self
            .take_app_answer(Call::Connect, true, (frame.command, None))?
            .unwrap_or_default();
        let proven = self
            .handshake
            .user
            .as_ref()
            .filter(|_| !self.handshake.user_is_claimed);
        let identity = match (answer.user, proven) {
            (Some(user), _) => Identity::verified(user, answer.roles.unwrap_or_default()),
            (None, Some(user)) => Identity::verified(
                user.clone(),
                answer.roles.unwrap_or_else(|| self.handshake.roles.clone()),
            ),
            (None, None) if !self.app.settings.auth.load().allows_anonymous() => {
                return Err(AuthError::Required.into());
            }
            (None, None) => Identity::anonymous(),
        };
        Ok((identity, answer.data))
    }

    /// The initial message of the application's subscribe answer, if it gave one.
    pub(super) fn app_subscribe_answer(
        &mut self,
        destination: &str,
    ) -> Result<Option<Content>, SessionError> {
        let asked = self.app_judges_subscribe(destination);
        Ok(self
            .take_app_answer(
                Call::Subscribe,
                asked,
                (Command::Subscribe, Some(destination)),
            )?
            .map(|answer| answer.content)
            .filter(|content| content.body.is_some()))
    }

    /// Delivers the application's initial message to subscription `id` only,
    /// ahead of anything the broker sends it, as every transport delivers a
    /// broker message (with a message id of the broker's, which ACK accepts).
    pub(super) fn push_initial_message(
        &self,
        id: &str,
        destination: &str,
        ack: AckMode,
        content: Content,
    ) {
        let mut headers = Headers::new();
        for (name, value) in content.headers {
            headers.set(&name, value);
        }
        if let Some(content_type) = content.content_type {
            headers.set("content-type", content_type);
        }
        let body = content.body.unwrap_or_default();
        let message = self.broker.prepare_one(destination, &headers, body);
        let size = message.approximate_len();
        self.outbound.push(
            Outgoing::Delivery {
                message,
                subscription: id.into(),
                needs_ack: ack != AckMode::Auto,
                replayed: false,
            },
            size,
        );
    }

    /// The SEND as the application rewrote it (body, content type, headers).
    pub(super) fn apply_app_publish_answer(&mut self, frame: Frame) -> Result<Frame, SessionError> {
        let destination = frame.get("destination");
        let asked = destination.is_some_and(|destination| self.app_judges_publish(destination));
        let Some(answer) =
            self.take_app_answer(Call::Publish, asked, (Command::Send, destination))?
        else {
            return Ok(frame);
        };
        let mut frame = frame;
        let content = answer.content;
        if let Some(body) = content.body {
            frame.body = body;
            // The client's length described the body it sent, not this one.
            frame.headers.remove("content-length");
        }
        if let Some(content_type) = content.content_type {
            frame.headers.set("content-type", content_type);
        }
        for (name, value) in content.headers {
            frame.headers.set(&name, value);
        }
        Ok(frame)
    }
}

/// A CONNECT the session will not refuse for its version or heart-beat header.
fn connect_is_well_formed(frame: &Frame) -> bool {
    let versions_ok = frame.get("accept-version").is_none_or(|offered| {
        offered
            .split(',')
            .any(|version| Version::parse(version.trim()).is_some())
    });
    let heartbeat_ok = frame
        .get("heart-beat")
        .is_none_or(|value| heartbeat::parse(value).is_some());
    versions_ok && heartbeat_ok
}
