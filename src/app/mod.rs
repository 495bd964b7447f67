//! The Spring programming model: `/app` handlers, reply policies, user
//! destinations, `MessagingTemplate`, events and interceptors. [`AppBuilder`]
//! collects them; the server turns it into the shared [`AppRuntime`].

pub mod config_routes;
pub mod directory;
pub mod events;
pub mod handler;
pub mod interceptor;
pub(crate) mod proxied_route;
pub mod router;
pub mod session_info;
pub mod socket;
pub mod template;
pub mod users;
pub(crate) mod worker;

use crate::broker::Broker;
use crate::broker::hooks::PublishHook;
use crate::cluster::Cluster;
use crate::config::EndpointConfig;
use arc_swap::ArcSwap;
use directory::SessionDirectory;
use events::{Event, Events};
use handler::{FromPayload, HandlerError, IntoPayload, Message, Payload, erase};
use interceptor::{ChannelInterceptor, HandshakeInterceptor, SessionIdInterceptor};
use router::{AppRouter, Mapping, ReplyTo, Template};
pub use session_info::SessionInfo;
use socket::SocketHandler;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use template::MessagingTemplate;
use users::UserRegistry;

/// Decides what a handler error sends to the sender: `(user destination, payload)`,
/// delivered to the sending session's `/user{destination}` subscriptions; `None` sends nothing.
pub type ExceptionHandler =
    Arc<dyn Fn(&HandlerError, &SessionInfo, &str) -> Option<(String, Payload)> + Send + Sync>;

/// Spring's default for an unhandled `@MessageMapping` exception, made visible:
/// `{"error": ..., "destination": ...}` on `/user/queue/errors`.
fn default_exception_handler() -> ExceptionHandler {
    Arc::new(|error, _session, destination| {
        let body = serde_json::json!({ "error": error.message, "destination": destination });
        Payload::json(&body)
            .ok()
            .map(|payload| ("/queue/errors".to_owned(), payload))
    })
}

/// Collects handlers, listeners and interceptors before the server starts.
///
/// Registration mistakes (a malformed mapping) are programming errors and panic
/// with the reason, like a malformed route in axum.
pub struct AppBuilder {
    messages: Vec<Mapping>,
    /// Which of `messages` came from `[[route]]` tables (see `config_routes`).
    configured: std::ops::Range<usize>,
    sockets: Vec<(EndpointConfig, Arc<dyn SocketHandler>)>,
    subscriptions: Vec<Mapping>,
    events: Events,
    handshake: Vec<Arc<dyn HandshakeInterceptor>>,
    channel: Vec<Arc<dyn ChannelInterceptor>>,
    exception_handler: ExceptionHandler,
}

impl Default for AppBuilder {
    fn default() -> Self {
        AppBuilder {
            messages: Vec::new(),
            configured: 0..0,
            subscriptions: Vec::new(),
            events: Events::default(),
            handshake: Vec::new(),
            channel: Vec::new(),
            exception_handler: default_exception_handler(),
            sockets: Vec::new(),
        }
    }
}

fn mapping<T, R, F, Fut>(destination: &str, handler: F) -> Mapping
where
    T: FromPayload,
    R: IntoPayload + 'static,
    F: Fn(Message<T>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, HandlerError>> + Send + 'static,
{
    let template = Template::parse(destination).unwrap_or_else(|reason| panic!("{reason}"));
    Mapping {
        template,
        handler: erase(handler),
        reply: ReplyTo::Default,
    }
}

impl AppBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// `@MessageMapping(destination)`: SENDs to an app prefix + `destination` run `handler`.
    /// The result goes to `/topic{destination}` unless the returned [`Mapping`] says otherwise.
    pub fn message_mapping<T, R, F, Fut>(&mut self, destination: &str, handler: F) -> &mut Mapping
    where
        T: FromPayload,
        R: IntoPayload + 'static,
        F: Fn(Message<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, HandlerError>> + Send + 'static,
    {
        self.messages.push(mapping(destination, handler));
        self.messages.last_mut().expect("just pushed")
    }

    /// `@SubscribeMapping(destination)`: a SUBSCRIBE to an app prefix + `destination`
    /// is answered once, to that subscription only, with the handler's result.
    pub fn subscribe_mapping<T, R, F, Fut>(&mut self, destination: &str, handler: F) -> &mut Self
    where
        T: FromPayload,
        R: IntoPayload + 'static,
        F: Fn(Message<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, HandlerError>> + Send + 'static,
    {
        self.subscriptions.push(mapping(destination, handler));
        self
    }

    /// Listens to session events (`ApplicationListener<SessionConnectEvent>` and friends).
    pub fn on_event(&mut self, listener: impl Fn(&Event) + Send + Sync + 'static) -> &mut Self {
        self.events.add(Arc::new(listener));
        self
    }

    /// Appends to the handshake chain; the built-in [`SessionIdInterceptor`] always runs first.
    pub fn handshake_interceptor(
        &mut self,
        interceptor: impl HandshakeInterceptor + 'static,
    ) -> &mut Self {
        self.handshake.push(Arc::new(interceptor));
        self
    }

    pub fn channel_interceptor(
        &mut self,
        interceptor: impl ChannelInterceptor + 'static,
    ) -> &mut Self {
        self.channel.push(Arc::new(interceptor));
        self
    }

    /// `@MessageExceptionHandler`: replaces the default reply on `/user/queue/errors`.
    /// A plain WebSocket endpoint run by `handler` (javax.websocket's
    /// `@ServerEndpoint` class), beside those of `[[websocket.endpoint]]`;
    /// `endpoint`'s texts and destinations apply too. Checked with them at start.
    pub fn websocket_endpoint(
        &mut self,
        endpoint: EndpointConfig,
        handler: impl SocketHandler,
    ) -> &mut Self {
        self.sockets.push((endpoint, Arc::new(handler)));
        self
    }

    /// The endpoints registered in code, for the server to serve beside the configured ones.
    pub(crate) fn socket_endpoints(&self) -> Vec<EndpointConfig> {
        self.sockets
            .iter()
            .map(|(endpoint, _)| endpoint.clone())
            .collect()
    }

    pub fn exception_handler(
        &mut self,
        handler: impl Fn(&HandlerError, &SessionInfo, &str) -> Option<(String, Payload)>
        + Send
        + Sync
        + 'static,
    ) -> &mut Self {
        self.exception_handler = Arc::new(handler);
        self
    }

    /// The outbound side of the channel interceptors, which the broker applies.
    pub(crate) fn publish_hooks(&self) -> Vec<Arc<dyn PublishHook>> {
        self.channel
            .iter()
            .map(|interceptor| {
                Arc::new(interceptor::PublishSide(interceptor.clone())) as Arc<dyn PublishHook>
            })
            .collect()
    }

    pub(crate) fn build(
        self,
        broker: Broker,
        cluster: Option<Arc<Cluster>>,
        settings: AppSettings,
    ) -> AppRuntime {
        let users = Arc::new(UserRegistry::new(cluster.clone()));
        let mut handshake: Vec<Arc<dyn HandshakeInterceptor>> =
            vec![Arc::new(SessionIdInterceptor)];
        handshake.extend(self.handshake);
        let mut messages: Vec<Arc<Mapping>> = self.messages.into_iter().map(Arc::new).collect();
        let after = messages.split_off(self.configured.end.min(messages.len()));
        let configured = messages.split_off(self.configured.start.min(messages.len()));
        AppRuntime {
            router: AppRouter {
                messages,
                configured: arc_swap::ArcSwap::from_pointee(configured),
                messages_after: after,
                subscriptions: self.subscriptions.into_iter().map(Arc::new).collect(),
            },
            events: self.events,
            handshake,
            channel: self.channel,
            exception_handler: self.exception_handler,
            socket_handlers: self
                .sockets
                .into_iter()
                .map(|(endpoint, handler)| (endpoint.path, handler))
                .collect(),
            template: MessagingTemplate::new(broker.clone(), users.clone(), cluster),
            users,
            directory: SessionDirectory::default(),
            broker,
            settings,
        }
    }
}

/// Settings of the application layer that come from broker.toml.
#[derive(Debug, Clone)]
pub struct AppSettings {
    /// The CONNECT `login` header names the user when the handshake did not.
    pub user_from_login: bool,
    /// Jobs one session may have waiting for its handlers.
    pub max_pending_app_messages: usize,
    /// Checks CONNECT credentials; replaced whole by a reload (`[auth]`).
    pub auth: Arc<ArcSwap<crate::security::Authenticator>>,
    /// `[[acl]]`: checked on SUBSCRIBE and SEND; replaced whole by a reload.
    pub access: Arc<ArcSwap<crate::security::AccessRules>>,
    /// `[proxy]`: the user's application, asked about connects, subscriptions and publishes.
    pub proxy: Option<Arc<crate::proxy::Proxy>>,
}

/// Everything the application layer shares at run time.
pub struct AppRuntime {
    pub router: AppRouter,
    pub events: Events,
    pub handshake: Vec<Arc<dyn HandshakeInterceptor>>,
    pub channel: Vec<Arc<dyn ChannelInterceptor>>,
    pub exception_handler: ExceptionHandler,
    /// Handlers of plain WebSocket endpoints registered in code, by path.
    pub socket_handlers: HashMap<String, Arc<dyn SocketHandler>>,
    pub users: Arc<UserRegistry>,
    pub directory: SessionDirectory,
    pub template: MessagingTemplate,
    pub broker: Broker,
    pub settings: AppSettings,
}

impl std::fmt::Debug for AppRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppRuntime")
            .field("router", &self.router)
            .field("events", &self.events)
            .field("settings", &self.settings)
            .finish()
    }
}
