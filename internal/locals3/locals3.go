// Package locals3 runs an in-process S3-compatible endpoint (gofakes3) for
// the local server and the tests, with path-style addressing.
package locals3

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3bolt"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	bolt "go.etcd.io/bbolt"
)

// Server is a running S3-compatible endpoint on loopback.
type Server struct {
	// Endpoint is the base URL, e.g. http://127.0.0.1:9000.
	Endpoint string

	srv     *http.Server
	closeDB func() error
}

// Start serves S3 on a free loopback port with the given buckets created.
// With dataFile set, objects persist in that file; otherwise in memory.
func Start(dataFile string, buckets []string) (*Server, error) {
	var backend gofakes3.Backend
	closeDB := func() error { return nil }
	if dataFile != "" {
		db, err := bolt.Open(dataFile, 0o600, &bolt.Options{Timeout: 5 * time.Second})
		if err != nil {
			return nil, fmt.Errorf("open S3 data file %s: %w", dataFile, err)
		}
		backend, closeDB = s3bolt.New(db), db.Close
	} else {
		backend = s3mem.New()
	}
	for _, bucket := range buckets {
		err := backend.CreateBucket(bucket)
		if err != nil && !gofakes3.HasErrorCode(err, gofakes3.ErrBucketAlreadyExists) {
			_ = closeDB()
			return nil, fmt.Errorf("create bucket %s: %w", bucket, err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = closeDB()
		return nil, fmt.Errorf("listen: %w", err)
	}
	s := &Server{
		Endpoint: "http://" + ln.Addr().String(),
		srv:      &http.Server{Handler: gofakes3.New(backend).Server(), ReadHeaderTimeout: 10 * time.Second},
		closeDB:  closeDB,
	}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Close stops the server and closes its data file.
func (s *Server) Close() error {
	return errors.Join(s.srv.Close(), s.closeDB())
}
