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

// asError turns a gRPC error into *Error; nil stays nil.
func asError(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err // not a gRPC status (e.g. a local I/O error)
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
