package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
)

// signer signs requests with AWS Signature Version 4.
type signer struct {
	v4          *v4.Signer
	credentials aws.CredentialsProvider
	region      string
	service     string
	now         func() time.Time
}

// newSigner builds the signer the settings ask for, loading the SDK's
// default configuration when no credentials were given.
func newSigner(s settings, host string) (*signer, error) {
	creds, region := s.credentials, s.region
	if creds == nil {
		cfg, err := config.LoadDefaultConfig(context.Background())
		if err != nil {
			return nil, fmt.Errorf("stampede: load the AWS configuration for SigV4: %w", err)
		}
		creds = cfg.Credentials
		if region == "" {
			region = cfg.Region
		}
		if creds == nil {
			return nil, fmt.Errorf("stampede: SigV4: the AWS default configuration has no credentials")
		}
	}
	if region == "" {
		region = regionFromHost(host)
	}
	if region == "" {
		return nil, fmt.Errorf("stampede: SigV4: no region; set AWS_REGION or pass one with WithSigV4")
	}
	if _, ok := creds.(*aws.CredentialsCache); !ok {
		creds = aws.NewCredentialsCache(creds)
	}
	return &signer{v4: v4.NewSigner(), credentials: creds, region: region, service: s.service, now: s.now}, nil
}

// regionFromHost reads the region of an API Gateway host,
// {id}.execute-api.{region}.amazonaws.com.
func regionFromHost(host string) string {
	parts := strings.Split(strings.ToLower(host), ".")
	for i := 0; i+2 < len(parts); i++ {
		if parts[i] == "execute-api" && strings.HasPrefix(parts[i+2], "amazonaws") {
			return parts[i+1]
		}
	}
	return ""
}

// emptyHash is the SHA-256 of no bytes.
const emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// sign adds the X-Amz-Date, X-Amz-Security-Token (with temporary
// credentials) and Authorization headers to r, whose payload is body.
func (s *signer) sign(ctx context.Context, r *http.Request, body []byte) error {
	creds, err := s.credentials.Retrieve(ctx)
	if err != nil {
		return &signingError{fmt.Errorf("stampede: SigV4: retrieve AWS credentials: %w", err)}
	}
	hash := emptyHash
	if len(body) > 0 {
		sum := sha256.Sum256(body)
		hash = hex.EncodeToString(sum[:])
	}
	if err := s.v4.SignHTTP(ctx, creds, r, hash, s.service, s.region, s.now()); err != nil {
		return &signingError{fmt.Errorf("stampede: SigV4: %w", err)}
	}
	return nil
}
