package codeximage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"google.golang.org/grpc/codes"

	v1 "github.com/codex-image-server/codex-image-server/clients/go/codeximagev1"
)

// FileInfo is what the first GetImageFile chunk announced.
type FileInfo struct {
	ContentType string
	TotalSize   int64
	SHA256      string
}

// Download streams one stored image into w and checks its size and sha256
// against what the server announced; a mismatch is a DataLoss *Error.
func (c *Client) Download(ctx context.Context, id string, w io.Writer) (*FileInfo, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rpc.GetImageFile(c.ctx(ctx), &v1.GetImageFileRequest{ImageId: id})
	if err != nil {
		return nil, asError(err)
	}
	var info *FileInfo
	h := sha256.New()
	var n int64
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, asError(err)
		}
		if info == nil {
			info = &FileInfo{chunk.GetContentType(), chunk.GetTotalSize(), chunk.GetSha256()}
		}
		h.Write(chunk.GetData())
		n += int64(len(chunk.GetData()))
		if _, err := w.Write(chunk.GetData()); err != nil {
			return nil, err
		}
	}
	got := hex.EncodeToString(h.Sum(nil))
	if info == nil || n != info.TotalSize || got != info.SHA256 {
		return nil, &Error{Code: codes.DataLoss, Reason: "CHECKSUM_MISMATCH",
			Message: fmt.Sprintf("image %s: got %d bytes sha256 %s, server announced %+v", id, n, got, info)}
	}
	return info, nil
}

// DownloadFile is Download into a file at path, which appears only once
// the bytes are verified.
func (c *Client) DownloadFile(ctx context.Context, id, path string) (*FileInfo, error) {
	part := path + ".part"
	f, err := os.Create(part)
	if err != nil {
		return nil, err
	}
	defer os.Remove(part) // no-op after the rename
	info, err := c.Download(ctx, id, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return info, os.Rename(part, path)
}
