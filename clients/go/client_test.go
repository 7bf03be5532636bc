package codeximage_test

// These tests need a live server: tests/clients/test_go_client.py starts one
// (fake codex) and runs `go test` with CODEX_IMAGE_ADDR and CODEX_IMAGE_API_KEY
// set, then checks by pid that the cancelled call's codex runs are gone.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	codeximage "github.com/codex-image-server/codex-image-server/clients/go"
	v1 "github.com/codex-image-server/codex-image-server/clients/go/codeximagev1"
)

func dial(t *testing.T, key string) *codeximage.Client {
	t.Helper()
	addr := os.Getenv("CODEX_IMAGE_ADDR")
	if addr == "" {
		t.Fatal("CODEX_IMAGE_ADDR is not set: run these through `make test` (tests/clients/test_go_client.py starts the server)")
	}
	c, err := codeximage.Dial(addr, codeximage.WithAPIKey(key))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func timeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestHealthAndCapabilities(t *testing.T) {
	c := dial(t, os.Getenv("CODEX_IMAGE_API_KEY"))
	h, err := c.Health(timeout(t, 10*time.Second))
	if err != nil || !h.GetReady() {
		t.Fatalf("health: %v %v", h, err)
	}
	caps, err := c.Capabilities(timeout(t, 10*time.Second))
	if err != nil || caps.GetMaxImages() != 4 {
		t.Fatalf("capabilities: %v %v", caps, err)
	}
}

func TestGenerateAndDownload(t *testing.T) {
	c := dial(t, os.Getenv("CODEX_IMAGE_API_KEY"))
	ctx := timeout(t, 60*time.Second)
	progress := 0
	res, err := c.Generate(ctx, &v1.GenerateRequest{Prompt: "a red fox", Count: 2, Size: "2K", Aspect: "16:9", RequestId: "go-gen-1"},
		func(ev *v1.GenerateResponse) {
			if ev.GetProgress() != nil {
				progress++
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 2 || res.Summary.GetRequestId() != "go-gen-1" || progress == 0 {
		t.Fatalf("images=%d summary=%v progress=%d", len(res.Images), res.Summary, progress)
	}
	for _, img := range res.Images {
		var buf bytes.Buffer
		info, err := c.Download(ctx, img.GetId(), &buf)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(buf.Bytes())
		if hex.EncodeToString(sum[:]) != img.GetSha256() || info.ContentType != "image/png" {
			t.Fatalf("download of %s: %+v", img.GetId(), info)
		}
	}
	path := filepath.Join(t.TempDir(), "fox.png")
	if _, err := c.DownloadFile(ctx, res.Images[0].GetId(), path); err != nil {
		t.Fatal(err)
	}
}

func TestInvalidRequestCarriesFieldViolations(t *testing.T) {
	c := dial(t, os.Getenv("CODEX_IMAGE_API_KEY"))
	_, err := c.Generate(timeout(t, 10*time.Second), &v1.GenerateRequest{Count: 9, Size: "banana"}, nil)
	var e *codeximage.Error
	if !errors.As(err, &e) || e.Code != codes.InvalidArgument || e.Domain != "codex-image-server" {
		t.Fatalf("want InvalidArgument *Error, got %v", err)
	}
	got := map[string]string{}
	for _, v := range e.Violations {
		got[v.Field] = v.Reason
	}
	want := map[string]string{"prompt": "MISSING_PROMPT", "count": "INVALID_COUNT", "size": "INVALID_SIZE"}
	for f, r := range want {
		if got[f] != r {
			t.Errorf("violation for %s: got %q want %q (all: %v)", f, got[f], r, e.Violations)
		}
	}
}

func TestMissingAPIKey(t *testing.T) {
	c := dial(t, "")
	_, err := c.Capabilities(timeout(t, 10*time.Second))
	var e *codeximage.Error
	if !errors.As(err, &e) || e.Code != codes.Unauthenticated || e.Reason != "UNAUTHORIZED" {
		t.Fatalf("want Unauthenticated/UNAUTHORIZED, got %v", err)
	}
}

// Cancels a slow generation once every candidate has started; the pytest
// wrapper then checks by pid that the server killed each codex run.
func TestContextCancel(t *testing.T) {
	c := dial(t, os.Getenv("CODEX_IMAGE_API_KEY"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	started := map[int32]bool{}
	_, err := c.Generate(ctx, &v1.GenerateRequest{Prompt: "slow fox [[fake delay=30]]", Count: 3, RequestId: "go-cancel-1"},
		func(ev *v1.GenerateResponse) {
			if p := ev.GetProgress(); p.GetStage() == v1.Progress_STAGE_CANDIDATE_STARTED {
				started[p.GetCandidateIndex()] = true
				if len(started) == 3 {
					cancel()
				}
			}
		})
	var e *codeximage.Error
	if !errors.As(err, &e) || e.Code != codes.Canceled {
		t.Fatalf("want Canceled, got %v", err)
	}
	t.Log("CANCELLED request_id=go-cancel-1")
}

func TestHistoryListGetDelete(t *testing.T) {
	c := dial(t, os.Getenv("CODEX_IMAGE_API_KEY"))
	ctx := timeout(t, 60*time.Second)
	res, err := c.Generate(ctx, &v1.GenerateRequest{Prompt: "go history gopher", Count: 3, RequestId: "go-hist"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	page, err := c.ListImages(ctx, &v1.ListImagesRequest{PageSize: 2, PromptContains: "GOPHER"})
	if err != nil || len(page.GetImages()) != 2 || page.GetNextPageToken() == "" {
		t.Fatalf("first page: %v %v", page, err)
	}
	all, err := c.AllImages(ctx, &v1.ListImagesRequest{PageSize: 1, RequestId: "go-hist"})
	if err != nil || len(all) != 3 {
		t.Fatalf("all pages: %d images, %v", len(all), err)
	}
	detail, err := c.GetRequest(ctx, "go-hist")
	if err != nil || detail.GetRequest().GetStatus() != "completed" || len(detail.GetImages()) != 3 ||
		detail.GetRequest().GetKeyName() != "default" {
		t.Fatalf("GetRequest: %v %v", detail, err)
	}
	reqs, err := c.ListRequests(ctx, &v1.ListRequestsRequest{RequestId: "go-hist", Status: "completed"})
	if err != nil || len(reqs.GetRequests()) != 1 {
		t.Fatalf("ListRequests: %v %v", reqs, err)
	}
	gone := res.Images[0].GetId()
	if err := c.DeleteImage(ctx, gone); err != nil {
		t.Fatal(err)
	}
	var e *codeximage.Error
	if err := c.DeleteImage(ctx, gone); !errors.As(err, &e) || e.Code != codes.NotFound {
		t.Fatalf("second delete: want NotFound, got %v", err)
	}
	left, err := c.AllImages(ctx, &v1.ListImagesRequest{RequestId: "go-hist"})
	if err != nil || len(left) != 2 {
		t.Fatalf("after delete: %d images, %v", len(left), err)
	}
}

func TestDetachedSubmitWaitCancel(t *testing.T) {
	c := dial(t, os.Getenv("CODEX_IMAGE_API_KEY"))
	ctx := timeout(t, 60*time.Second)
	op, err := c.Submit(ctx, &v1.GenerateRequest{Prompt: "go kite [[fake delay=0.3]]", Count: 2, RequestId: "go-op-1"})
	if err != nil || op.GetName() != "operations/go-op-1" {
		t.Fatalf("submit: %v %v", op, err)
	}
	done, err := c.Wait(ctx, "go-op-1")
	if err != nil {
		t.Fatal(err)
	}
	res, err := codeximage.OperationResult(done)
	if err != nil || len(res.GetImages()) != 2 {
		t.Fatalf("result: %v %v", res, err)
	}
	if meta, err := codeximage.OperationMetadata(done); err != nil || meta.GetState() != v1.GenerationMetadata_STATE_SUCCEEDED {
		t.Fatalf("metadata: %v %v", meta, err)
	}
	slow, err := c.Submit(ctx, &v1.GenerateRequest{Prompt: "go slow [[fake delay=60]]", RequestId: "go-op-slow"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Cancel(ctx, slow.GetName()); err != nil {
		t.Fatal(err)
	}
	ended, err := c.Wait(ctx, slow.GetName())
	if err != nil {
		t.Fatal(err)
	}
	var e *codeximage.Error
	if _, err := codeximage.OperationResult(ended); !errors.As(err, &e) || e.Code != codes.Canceled {
		t.Fatalf("cancelled result: %v", err)
	}
	if err := c.Cancel(ctx, slow.GetName()); !errors.As(err, &e) || e.Code != codes.FailedPrecondition || e.Reason != "OPERATION_DONE" {
		t.Fatalf("second cancel: %v", err)
	}
}
