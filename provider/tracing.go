package provider

import (
	"context"
	"sync"

	"github.com/zitadel/oidc/v3/pkg/op"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// untraced is the tracer zitadel's op package gets: Keyport exports no
// traces, and OpenTelemetry's global tracer, without an SDK behind it,
// still wraps each of the dozen or so spans zitadel starts per token
// request in a new span value and a new context layer. Those are
// allocations and a longer context chain for every context lookup after
// them (the read memo, the signing note), for nothing. This one hands the
// context back as it is.
type untraced struct{ embedded.Tracer }

func (untraced) Start(ctx context.Context, _ string, _ ...trace.SpanStartOption) (context.Context, trace.Span) {
	return ctx, trace.SpanFromContext(ctx)
}

var untraceOnce sync.Once

// untraceZitadel sets op.Tracer, a package variable of zitadel's, once per
// process, before any handler of the first provider runs.
func untraceZitadel() {
	untraceOnce.Do(func() { op.Tracer = untraced{} })
}
