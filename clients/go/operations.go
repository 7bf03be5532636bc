package codeximage

// Detached generations: SubmitGeneration answers at once with a standard
// long-running operation ("operations/{request_id}"), which the server runs
// whether or not the caller stays; the google.longrunning.Operations service
// on the same connection gets, waits on, cancels and deletes it.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	v1 "github.com/codex-image-server/codex-image-server/clients/go/codeximagev1"
)

// OperationName is "operations/ID" for an id or a name.
func OperationName(nameOrID string) string {
	if strings.HasPrefix(nameOrID, "operations/") {
		return nameOrID
	}
	return "operations/" + nameOrID
}

// Submit starts a detached generation. The same RequestId again returns the
// same operation and starts nothing.
func (c *Client) Submit(ctx context.Context, req *v1.GenerateRequest) (*longrunningpb.Operation, error) {
	op, err := c.rpc.SubmitGeneration(c.ctx(ctx), req)
	return op, asError(err)
}

// GetOperation is the operation as it is now.
func (c *Client) GetOperation(ctx context.Context, name string) (*longrunningpb.Operation, error) {
	op, err := c.ops.GetOperation(c.ctx(ctx), &longrunningpb.GetOperationRequest{Name: OperationName(name)})
	return op, asError(err)
}

// Wait returns the operation once done, or as it is when ctx ends (then with ctx's error).
func (c *Client) Wait(ctx context.Context, name string) (*longrunningpb.Operation, error) {
	for {
		wait := time.Minute
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			wait = max(time.Until(deadline)-100*time.Millisecond, 0)
		}
		op, err := c.ops.WaitOperation(c.ctx(ctx), &longrunningpb.WaitOperationRequest{
			Name: OperationName(name), Timeout: durationpb.New(wait)})
		if err != nil {
			return op, asError(err)
		}
		if op.GetDone() {
			return op, nil
		}
		if ctx.Err() != nil || wait == 0 {
			return op, ctx.Err()
		}
	}
}

// Cancel stops it (every codex run of it); FailedPrecondition when already done.
func (c *Client) Cancel(ctx context.Context, name string) error {
	_, err := c.ops.CancelOperation(c.ctx(ctx), &longrunningpb.CancelOperationRequest{Name: OperationName(name)})
	return asError(err)
}

// DeleteOperation forgets a finished operation (its images stay).
func (c *Client) DeleteOperation(ctx context.Context, name string) error {
	_, err := c.ops.DeleteOperation(c.ctx(ctx), &longrunningpb.DeleteOperationRequest{Name: OperationName(name)})
	return asError(err)
}

// ListOperations is one page, newest first; Filter takes "done = true|false"
// or "state = RUNNING" (etc.).
func (c *Client) ListOperations(ctx context.Context, req *longrunningpb.ListOperationsRequest) (*longrunningpb.ListOperationsResponse, error) {
	res, err := c.ops.ListOperations(c.ctx(ctx), req)
	return res, asError(err)
}

// OperationMetadata is an operation's state, attempts, progress and times.
func OperationMetadata(op *longrunningpb.Operation) (*v1.GenerationMetadata, error) {
	meta := &v1.GenerationMetadata{}
	if err := op.GetMetadata().UnmarshalTo(meta); err != nil {
		return nil, err
	}
	return meta, nil
}

// OperationResult is a done operation's images and summary; a failed or
// cancelled one returns its *Error.
func OperationResult(op *longrunningpb.Operation) (*v1.GenerationResult, error) {
	if !op.GetDone() {
		return nil, fmt.Errorf("%s is not done yet", op.GetName())
	}
	if e := op.GetError(); e != nil {
		return nil, asError(status.ErrorProto(e))
	}
	result := &v1.GenerationResult{}
	if err := op.GetResponse().UnmarshalTo(result); err != nil {
		return nil, err
	}
	return result, nil
}
