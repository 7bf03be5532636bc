package codeximage

import (
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error is every failed call: the gRPC code plus the server's ErrorInfo
// reason and BadRequest field violations. Use errors.As to get one.
type Error struct {
	Code       codes.Code
	Message    string
	Reason     string // ErrorInfo.reason, e.g. "INVALID_SIZE", "QUEUE_FULL"
	Domain     string // "codex-image-server"
	Violations []FieldViolation
	status     *status.Status
}

// FieldViolation names one bad request field.
type FieldViolation struct {
	Field, Description, Reason string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Code.String())
	if e.Reason != "" {
		fmt.Fprintf(&b, " (%s)", e.Reason)
	}
	b.WriteString(": " + e.Message)
	for _, v := range e.Violations {
		fmt.Fprintf(&b, "\n  %s: %s [%s]", v.Field, v.Description, v.Reason)
	}
	return b.String()
}

// GRPCStatus lets status.FromError and status.Code see through the wrapper.
func (e *Error) GRPCStatus() *status.Status { return e.status }

// ConnectionLost is the Reason of an Unavailable *Error for a call whose
// stream a proxy ended without any status because the server behind it went
// away mid-call (HAProxy does that when a replica dies). grpc-go reports it as
// Internal "server closed the stream without sending trailers"; our servers
// never end a call that way, so it is the transport, and the call may be
// retried (another replica will answer).
const ConnectionLost = "CONNECTION_LOST"

const cutStream = "server closed the stream without sending trailers"

// asError turns a gRPC error into *Error; nil stays nil.
func asError(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err // not a gRPC status (e.g. a local I/O error)
	}
	if st.Code() == codes.Internal && st.Message() == cutStream && len(st.Details()) == 0 {
		msg := "the connection to the server was lost mid-call (grpc: Internal \"" + cutStream +
			"\", no status from any server): it went away"
		return &Error{Code: codes.Unavailable, Message: msg, Reason: ConnectionLost,
			status: status.New(codes.Unavailable, msg)}
	}
	e := &Error{Code: st.Code(), Message: st.Message(), status: st}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			e.Reason, e.Domain = d.GetReason(), d.GetDomain()
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				e.Violations = append(e.Violations, FieldViolation{v.GetField(), v.GetDescription(), v.GetReason()})
			}
		}
	}
	return e
}
