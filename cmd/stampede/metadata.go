package main

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/stampede-cache/stampede/client"
	"github.com/stampede-cache/stampede/internal/manager"
)

// metadataFlags describe an output and when it may replace an entry (put
// and run).
type metadataFlags struct {
	outputURI             string
	labelArgs             []string
	labels                map[string]string
	srcProject, srcDomain string
	srcName, srcVersion   string
	overwrite             bool
	maxAge, ttl           time.Duration
}

func (m *metadataFlags) register(fl *pflag.FlagSet, outputURIHelp string) {
	fl.StringVar(&m.outputURI, "output-uri", "", outputURIHelp)
	fl.StringArrayVar(&m.labelArgs, "label", nil, "a metadata label, `name=value` (repeatable)")
	fl.StringVar(&m.srcProject, "source-project", "", "metadata: the producing task's project")
	fl.StringVar(&m.srcDomain, "source-domain", "", "metadata: the producing task's domain")
	fl.StringVar(&m.srcName, "source-name", "", "metadata: the producing task's name")
	fl.StringVar(&m.srcVersion, "source-version", "", "metadata: the producing task's version")
	fl.BoolVar(&m.overwrite, "overwrite", false, "replace an existing entry")
	fl.DurationVar(&m.maxAge, "max-age", 0, "replace an existing entry last written longer ago than this (e.g. 24h)")
	fl.DurationVar(&m.ttl, "ttl", 0, "the entry's lifetime (e.g. 720h); none by default")
}

// check validates the flags before any request; the output URI, when
// given, as the service would.
func (m *metadataFlags) check() error {
	m.labels = nil
	for _, arg := range m.labelArgs {
		name, value, ok := strings.Cut(arg, "=")
		if !ok || name == "" {
			return usageErrorf("--label %q: want name=value", arg)
		}
		if m.labels == nil {
			m.labels = map[string]string{}
		}
		m.labels[name] = value
	}
	const maxLifetime = manager.MaxLifetimeSeconds * time.Second
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--max-age", m.maxAge}, {"--ttl", m.ttl}} {
		if d.v < 0 || d.v > maxLifetime {
			return usageErrorf("%s %s: want a duration from 0 to %s", d.flag, d.v, maxLifetime)
		}
	}
	if m.outputURI != "" {
		if err := checkOutputURI(m.outputURI); err != nil {
			return usageErrorf("--output-uri: %v", err)
		}
	}
	return nil
}

func (m *metadataFlags) metadata() client.Metadata {
	var md client.Metadata
	if m.srcProject != "" || m.srcDomain != "" || m.srcName != "" || m.srcVersion != "" {
		md.Source = &client.Source{Project: m.srcProject, Domain: m.srcDomain, Name: m.srcName, Version: m.srcVersion}
	}
	if len(m.labels) > 0 {
		md.Labels = m.labels
	}
	return md
}

// checkOutputURI validates an output URI as the service does
// (internal/manager: s3://bucket/key, a valid S3 bucket name, a key, at
// most 2048 bytes of UTF-8 without control characters). A test ties the
// two together over a table of URIs.
func checkOutputURI(uri string) error {
	switch {
	case len(uri) > manager.MaxOutputURIBytes:
		return fmt.Errorf("longer than %d bytes", manager.MaxOutputURIBytes)
	case !utf8.ValidString(uri):
		return fmt.Errorf("not valid UTF-8")
	case strings.IndexFunc(uri, unicode.IsControl) >= 0:
		return fmt.Errorf("control characters are not allowed")
	}
	bucket, key, ok := manager.SplitS3URI(uri)
	switch {
	case !ok:
		return fmt.Errorf("%q: want s3://bucket/key", uri)
	case !validBucketName(bucket):
		return fmt.Errorf("%q is not a valid S3 bucket name (3 to 63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit)", bucket)
	case key == "":
		return fmt.Errorf("%q: the object key is empty", uri)
	}
	return nil
}

// validBucketName follows S3's rules for general-purpose bucket names.
func validBucketName(b string) bool {
	if len(b) < 3 || len(b) > 63 || strings.Contains(b, "..") {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (c != '.' && c != '-' || i == 0 || i == len(b)-1) {
			return false
		}
	}
	return true
}
