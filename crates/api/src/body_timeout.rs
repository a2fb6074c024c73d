//! A request body that fails when the client sends nothing for too long while a handler waits
//! for it: a client that announces a body and stalls cannot hold a task and its buffers
//! forever. Only time spent waiting counts, so a handler that reads the body late is not
//! penalized.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// How long a handler waits for the next piece of a request body.
pub(crate) const BODY_IDLE: Duration = Duration::from_secs(60);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub(crate) struct IdleTimeout<B> {
    inner: B,
    idle: Duration,
    /// Made at the first wait: most requests (every GET) never wait for a body.
    sleep: Option<Pin<Box<Sleep>>>,
    waiting: bool,
}

impl<B> IdleTimeout<B> {
    pub(crate) fn new(inner: B, idle: Duration) -> Self {
        Self {
            inner,
            idle,
            sleep: None,
            waiting: false,
        }
    }
}

impl<B> Body for IdleTimeout<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.waiting = false;
                Poll::Ready(frame.map(|r| r.map_err(Into::into)))
            }
            Poll::Pending => {
                let idle = this.idle;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                // The clock is read when a wait begins, not at every poll of one.
                if !this.waiting {
                    this.waiting = true;
                    sleep.as_mut().reset(Instant::now() + idle);
                }
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(format!(
                        "the client sent no request body data for {} s",
                        this.idle.as_secs()
                    )
                    .into()))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    type Chunks = tokio::sync::mpsc::Sender<&'static [u8]>;

    /// A body fed chunk by chunk through the returned sender.
    fn fed() -> (
        Chunks,
        impl Body<Data = Bytes, Error = std::io::Error> + Unpin,
    ) {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            let chunk = rx.recv().await?;
            Some((Ok(Frame::data(Bytes::from_static(chunk))), rx))
        });
        (tx, http_body_util::StreamBody::new(Box::pin(stream)))
    }

    #[tokio::test]
    async fn a_stalled_body_fails_and_a_steady_one_does_not() {
        let (tx, body) = fed();
        tx.send(b"{\"Ima").await.unwrap();
        let mut b = IdleTimeout::new(body, Duration::from_millis(100));
        assert!(b.frame().await.unwrap().is_ok());
        let started = std::time::Instant::now();
        let err = b.frame().await.unwrap().unwrap_err();
        assert!(err.to_string().contains("no request body data"), "{err}");
        assert!(started.elapsed() >= Duration::from_millis(100));
        drop(tx);

        // Late reading is not waiting: data already there is returned whatever the delay.
        let (tx, body) = fed();
        let mut b = IdleTimeout::new(body, Duration::from_millis(50));
        tokio::time::sleep(Duration::from_millis(120)).await;
        tx.send(b"x").await.unwrap();
        drop(tx);
        assert!(b.frame().await.unwrap().is_ok());
        assert!(b.frame().await.is_none());
    }
}
