//! The session's side of `[proxy]`: which frames the user's application judges,
//! the requests that describe them, and what its answers do to the session.
//! The transport makes the call ([`Session::app_call`]) before it hands the
//! frame over, so the state machine itself stays free of I/O.

use super::{Session, SessionError};
use crate::app::proxied_route::describe_session;
use crate::broker::destination::Route;
use crate::broker::outbound::Outgoing;
use crate::proxy::{Answer, Call, Content, PendingCall, ProxyError, Request};
use crate::security::{Action, Identity};
use crate::stomp::{Command, Frame, encoded_len_hint};

impl Session {
    /// The call to the application `frame` needs before [`Session::handle`],
    /// if any; its answer goes to [`Session::set_app_answer`]. A frame that an
    /// `[[acl]]` rule refuses is not sent to the application.
    pub fn app_call(&self, frame: &Frame) -> Option<PendingCall> {
        let proxy = self.app.settings.proxy.as_ref()?;
        let connected = self.connected.is_some();
        match frame.command {
            Command::Connect | Command::Stomp if !connected && proxy.judges_connect() => {
                let http_headers = self
                    .handshake
                    .http_headers
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_str()))
                    .collect();
                let request = Request {
                    user: self.handshake.user.as_deref(),
                    roles: &self.handshake.roles,
                    login: Some(frame.get("login")),
                    passcode: Some(frame.get("passcode")),
                    http_headers: Some(http_headers),
                    headers: Request::frame_headers(&frame.headers, &["passcode"]),
                    ..describe_session(Call::Connect, &self.info)
                };
                Some(proxy.ask(Call::Connect, &request))
            }
            Command::Subscribe if connected => {
                let destination = frame.get("destination")?;
                if !self.app_judges_subscribe(destination)
                    || self.check_access(Action::Subscribe, destination).is_err()
                {
                    return None;
                }
                let request = Request {
                    destination: Some(destination),
                    subscription: frame.get("id"),
                    headers: Request::frame_headers(&frame.headers, &[]),
                    ..describe_session(Call::Subscribe, &self.info)
                };
                Some(proxy.ask(Call::Subscribe, &request))
            }
            Command::Send if connected => {
                let destination = frame.get("destination")?;
                if !self.app_judges_publish(destination)
                    || self.check_access(Action::Send, destination).is_err()
                {
                    return None;
                }
                let request = Request {
                    destination: Some(destination),
                    headers: Request::frame_headers(&frame.headers, &[]),
                    ..describe_session(Call::Publish, &self.info)
                }
                .with_body(&frame.body);
                Some(proxy.ask(Call::Publish, &request))
            }
            _ => None,
        }
    }

    /// The application's answer about the next frame [`Session::handle`] gets.
    pub fn set_app_answer(&mut self, answer: Result<Answer, ProxyError>) {
        self.app_answer = Some(answer);
    }

    /// Asks the application about `frame` when it must, then handles it: for
    /// frames a transport makes up itself (SSE, plain WebSocket endpoints).
    pub async fn handle_after_app(&mut self, frame: Frame) -> super::Flow {
        if let Some(call) = self.app_call(&frame) {
            let answer = call.await;
            self.set_app_answer(answer);
        }
        self.handle(frame)
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
    pub(super) fn app_judges_publish(&self, destination: &str) -> bool {
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
    /// session's error; a frame that should have been asked and was not is
    /// refused too, so that no transport can skip the application by mistake.
    fn take_app_answer(&mut self, call: Call, asked: bool) -> Result<Option<Answer>, SessionError> {
        let answer = self.app_answer.take();
        if !asked {
            return Ok(None);
        }
        match answer {
            None => Err(ProxyError::NotAsked { key: call.key() }.into()),
            Some(Err(error)) => Err(error.into()),
            Some(Ok(answer)) if !answer.allow => Err(SessionError::AppRefused {
                message: answer.refusal().to_owned(),
                code: answer.code,
            }),
            Some(Ok(answer)) => Ok(Some(answer)),
        }
    }

    /// Who the application says the session is, and the data it keeps with it.
    /// Without a user in the answer the handshake's stands (a token's, an
    /// interceptor's), as proven or as claimed as it was.
    pub(super) fn identify_by_app(
        &mut self,
    ) -> Result<(Identity, Option<serde_json::Value>), SessionError> {
        let answer = self
            .take_app_answer(Call::Connect, true)?
            .unwrap_or_default();
        let identity = match (answer.user, &self.handshake.user) {
            (Some(user), _) => Identity::verified(user, answer.roles.unwrap_or_default()),
            (None, Some(user)) if self.handshake.user_is_claimed => Identity::claimed(user.clone()),
            (None, Some(user)) => Identity::verified(
                user.clone(),
                answer.roles.unwrap_or_else(|| self.handshake.roles.clone()),
            ),
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
            .take_app_answer(Call::Subscribe, asked)?
            .map(|answer| answer.content)
            .filter(|content| content.body.is_some()))
    }

    /// Delivers the application's initial message to subscription `id` only,
    /// ahead of anything the broker sends it.
    pub(super) fn push_initial_message(&self, id: &str, destination: &str, content: Content) {
        let mut frame = Frame::new(Command::Message)
            .header("subscription", id)
            .header("destination", destination)
            .header("message-id", self.broker.next_message_id().to_string());
        for (name, value) in content.headers {
            frame.headers.set(&name, value);
        }
        if let Some(content_type) = content.content_type {
            frame.headers.set("content-type", content_type);
        }
        frame.body = content.body.unwrap_or_default();
        let size = encoded_len_hint(&frame);
        self.outbound.push(Outgoing::Frame(frame), size);
    }

    /// The SEND as the application rewrote it (body, content type, headers).
    pub(super) fn apply_app_publish_answer(&mut self, frame: Frame) -> Result<Frame, SessionError> {
        let asked = frame
            .get("destination")
            .is_some_and(|destination| self.app_judges_publish(destination));
        let Some(answer) = self.take_app_answer(Call::Publish, asked)? else {
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
