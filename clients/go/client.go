// Package codeximage is a small typed client for codex-image-server's gRPC
// ImageService. The generated types live in the codeximagev1 package.
//
//	c, err := codeximage.Dial("127.0.0.1:17342", codeximage.WithAPIKey(key))
//	res, err := c.Generate(ctx, &codeximagev1.GenerateRequest{Prompt: "a red fox", Count: 2}, nil)
//	_, err = c.DownloadFile(ctx, res.Images[0].GetId(), "fox.png")
//
// Cancel ctx to cancel a generation: the server then kills its codex runs.
package codeximage

import (
	"context"
	"errors"
	"io"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	v1 "github.com/codex-image-server/codex-image-server/clients/go/codeximagev1"
)

// DefaultTarget is where a server listens unless told otherwise.
const DefaultTarget = "127.0.0.1:17342"

// Client wraps one connection. Safe for concurrent use.
type Client struct {
	conn   *grpc.ClientConn
	rpc    v1.ImageServiceClient
	ops    longrunningpb.OperationsClient
	apiKey string
}

// Option configures Dial.
type Option func(*options)

type options struct {
	apiKey   string
	dialOpts []grpc.DialOption
}

// WithAPIKey sends `authorization: Bearer <key>` on every ImageService call.
func WithAPIKey(key string) Option { return func(o *options) { o.apiKey = key } }

// WithDialOptions replaces the default plaintext transport (e.g. for TLS).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dialOpts = append(o.dialOpts, opts...) }
}

// Dial creates a client; the connection is made lazily on the first call.
func Dial(target string, opts ...Option) (*Client, error) {
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	if len(o.dialOpts) == 0 {
		o.dialOpts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	conn, err := grpc.NewClient(target, o.dialOpts...)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, rpc: v1.NewImageServiceClient(conn), ops: longrunningpb.NewOperationsClient(conn),
		apiKey: o.apiKey}, nil
}

// Close releases the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Raw is the generated stub, for anything the wrapper does not cover.
func (c *Client) Raw() v1.ImageServiceClient { return c.rpc }

func (c *Client) ctx(ctx context.Context) context.Context {
	if c.apiKey == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.apiKey)
}

// Health reports readiness in detail.
func (c *Client) Health(ctx context.Context) (*v1.HealthResponse, error) {
	res, err := c.rpc.Health(c.ctx(ctx), &v1.HealthRequest{})
	return res, asError(err)
}

// Capabilities is the server's capabilities document.
func (c *Client) Capabilities(ctx context.Context) (*v1.GetCapabilitiesResponse, error) {
	res, err := c.rpc.GetCapabilities(c.ctx(ctx), &v1.GetCapabilitiesRequest{})
	return res, asError(err)
}

// GetImage is one stored image's metadata.
func (c *Client) GetImage(ctx context.Context, id string) (*v1.Image, error) {
	res, err := c.rpc.GetImage(c.ctx(ctx), &v1.GetImageRequest{ImageId: id})
	return res.GetImage(), asError(err)
}

// ListImages is one page of stored images, newest first; filters and paging
// are the request's fields (pass NextPageToken on as PageToken).
func (c *Client) ListImages(ctx context.Context, req *v1.ListImagesRequest) (*v1.ListImagesResponse, error) {
	res, err := c.rpc.ListImages(c.ctx(ctx), req)
	return res, asError(err)
}

// AllImages follows the pages of ListImages and returns every matching image.
func (c *Client) AllImages(ctx context.Context, req *v1.ListImagesRequest) ([]*v1.Image, error) {
	page := proto.Clone(req).(*v1.ListImagesRequest)
	var all []*v1.Image
	for {
		res, err := c.ListImages(ctx, page)
		if err != nil {
			return all, err
		}
		all = append(all, res.GetImages()...)
		if res.GetNextPageToken() == "" {
			return all, nil
		}
		page.PageToken = res.GetNextPageToken()
	}
}

// DeleteImage deletes a stored image (bytes and record).
func (c *Client) DeleteImage(ctx context.Context, id string) error {
	_, err := c.rpc.DeleteImage(c.ctx(ctx), &v1.DeleteImageRequest{ImageId: id})
	return asError(err)
}

// ListRequests is one page of the request history, newest first (failed,
// cancelled and refused requests too).
func (c *Client) ListRequests(ctx context.Context, req *v1.ListRequestsRequest) (*v1.ListRequestsResponse, error) {
	res, err := c.rpc.ListRequests(c.ctx(ctx), req)
	return res, asError(err)
}

// GetRequest is one request's parameters, outcome, durations, accounts,
// images and its key's usage.
func (c *Client) GetRequest(ctx context.Context, requestID string) (*v1.GetRequestResponse, error) {
	res, err := c.rpc.GetRequest(c.ctx(ctx), &v1.GetRequestRequest{RequestId: requestID})
	return res, asError(err)
}

// Result is what a finished Generate returned.
type Result struct {
	Images  []*v1.Image
	Summary *v1.GenerateSummary
}

// Generate runs one request to the end, calling onEvent (when not nil) for
// every stream message as it arrives. Cancelling ctx cancels the call.
func (c *Client) Generate(ctx context.Context, req *v1.GenerateRequest, onEvent func(*v1.GenerateResponse)) (*Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // an early return must not leave the call (and codex) running
	stream, err := c.rpc.Generate(c.ctx(ctx), req)
	if err != nil {
		return nil, asError(err)
	}
	res := &Result{}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return res, nil
		}
		if err != nil {
			return res, asError(err)
		}
		if onEvent != nil {
			onEvent(msg)
		}
		switch ev := msg.GetEvent().(type) {
		case *v1.GenerateResponse_Image:
			res.Images = append(res.Images, ev.Image)
		case *v1.GenerateResponse_Summary:
			res.Summary = ev.Summary
		}
	}
}
