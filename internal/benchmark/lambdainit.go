package benchmark

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/stampede-cache/stampede/internal/lambdaharness"
)

// LambdaOptions size section 4.
type LambdaOptions struct {
	// RepoDir is the module root to build in.
	RepoDir string
	// Functions lists the function packages to build (import paths or
	// ./functions/<name>); empty means every main package under functions/.
	Functions []string
	// Runs is how many timed starts each binary gets per variant.
	Runs int
	// SystemRoots adds the machine's public roots to the generated CA
	// bundle, as a corporate bundle carries them (AWS_CA_BUNDLE replaces
	// the roots, it does not add to them).
	SystemRoots bool
}

// Floor programs, built with the functions. They live under testdata: they
// are the benchmark's fixtures, not parts of Stampede, and the floor links
// the DynamoDB SDK directly, as no package of Stampede's own may.
const (
	floorPackage = "./internal/benchmark/testdata/floor/dynamodb"
	helloPackage = "./internal/benchmark/testdata/floor/hello"
	// requestFloorPackage is the floor plus one UpdateItem per invocation:
	// what any function that sends a request must link.
	requestFloorPackage = "./internal/benchmark/testdata/floor/request"
	floorName           = "dynamodb"
	helloName           = "hello"
)

// InitResult is one binary's start-up.
type InitResult struct {
	Name string `json:"name"`
	// Kind is function, floor (hello + AWS config + DynamoDB client),
	// request floor (the floor sending one UpdateItem) or hello (bare
	// aws-lambda-go).
	Kind      string `json:"kind"`
	SizeBytes int64  `json:"size_bytes"`
	// Init is the median from process start to its first Runtime API
	// /next request; InitCABundle the same with AWS_CA_BUNDLE set.
	Init         time.Duration `json:"init_ns"`
	InitCABundle time.Duration `json:"init_ca_bundle_ns"`
	// PackageInit is the median sum of the package initialisers' clock
	// time (GODEBUG=inittrace=1).
	PackageInit time.Duration `json:"package_init_ns"`
	// Spread is the smallest and largest Init, for judging the noise.
	InitMin time.Duration `json:"init_min_ns"`
	InitMax time.Duration `json:"init_max_ns"`
}

// LambdaResult is section 4.
type LambdaResult struct {
	GOARCH        string       `json:"goarch"`
	Runs          int          `json:"runs"`
	CABundleCerts int          `json:"ca_bundle_certs"`
	Binaries      []InitResult `json:"binaries"`
}

// runLambdaInit measures section 4.
func (b *bench) runLambdaInit(ctx context.Context, o LambdaOptions) (LambdaResult, error) {
	res := LambdaResult{GOARCH: runtime.GOARCH, Runs: o.Runs}
	dir, err := os.MkdirTemp(b.workDir, "lambda-")
	if err != nil {
		return res, err
	}
	functions := o.Functions
	if len(functions) == 0 {
		if functions, err = functionPackages(ctx, o.RepoDir); err != nil {
			return res, err
		}
	}
	pkgs := append(append([]string{}, functions...), floorPackage, requestFloorPackage, helloPackage)
	b.logf("lambda: building %d binaries for linux/%s", len(pkgs), runtime.GOARCH)
	if err := buildLambda(ctx, o.RepoDir, dir, pkgs); err != nil {
		return res, err
	}
	bundle, certs, err := writeCABundle(dir, o.SystemRoots)
	if err != nil {
		return res, err
	}
	res.CABundleCerts = certs

	type series struct {
		plain, withBundle, pkgInit []time.Duration
	}
	names := make([]string, len(pkgs))
	all := make([]series, len(pkgs))
	for i, p := range pkgs {
		names[i] = filepath.Base(p)
	}
	// One untimed start each (page cache), then the timed rounds, every
	// binary in turn so a drift of the machine falls on all of them.
	for round := -1; round < o.Runs; round++ {
		for i, name := range names {
			bin := filepath.Join(dir, name)
			plain, _, err := startOnce(ctx, bin, name, lambdaEnv(""), false)
			if err != nil {
				return res, fmt.Errorf("%s: %w", name, err)
			}
			withBundle, _, err := startOnce(ctx, bin, name, lambdaEnv(bundle), false)
			if err != nil {
				return res, fmt.Errorf("%s with AWS_CA_BUNDLE: %w", name, err)
			}
			_, pkgInit, err := startOnce(ctx, bin, name, lambdaEnv(""), true)
			if err != nil {
				return res, fmt.Errorf("%s with inittrace: %w", name, err)
			}
			if round < 0 {
				continue
			}
			all[i].plain = append(all[i].plain, plain)
			all[i].withBundle = append(all[i].withBundle, withBundle)
			all[i].pkgInit = append(all[i].pkgInit, pkgInit)
		}
	}
	for i, name := range names {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return res, err
		}
		kind := "function"
		switch pkgs[i] {
		case floorPackage:
			kind = "floor"
		case requestFloorPackage:
			kind = "request floor"
		case helloPackage:
			kind = "hello"
		}
		s := all[i]
		res.Binaries = append(res.Binaries, InitResult{
			Name: name, Kind: kind, SizeBytes: st.Size(),
			Init: median(s.plain), InitCABundle: median(s.withBundle), PackageInit: median(s.pkgInit),
			InitMin: minDuration(s.plain), InitMax: maxDuration(s.plain),
		})
	}
	return res, nil
}

// functionPackages lists the main packages under functions/.
func functionPackages(ctx context.Context, repo string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-f", `{{if eq .Name "main"}}{{.ImportPath}}{{end}}`, "./functions/...")
	cmd.Dir = repo
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("list the functions: %w", err)
	}
	pkgs := strings.Fields(string(out))
	if len(pkgs) == 0 {
		return nil, errors.New("no function packages under functions/")
	}
	return pkgs, nil
}

// buildLambda builds the packages as the Makefile builds the functions for
// Lambda (for this machine's architecture), each binary named after its
// package directory.
func buildLambda(ctx context.Context, repo, outDir string, pkgs []string) error {
	args := append([]string{"build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", outDir + string(filepath.Separator)}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+runtime.GOARCH, "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build: %w: %s", err, stderr.String())
	}
	return nil
}

// lambdaEnv is what the benchmark adds to the environment Lambda gives a
// function (internal/lambdaharness sets that): the credentials Lambda
// passes from the execution role, and Stampede's variables as the stack
// sets them. No endpoint override: the functions resolve AWS's own, as
// deployed, and make no request before /next.
func lambdaEnv(caBundle string) []string {
	env := []string{
		"AWS_ACCESS_KEY_ID=bench",
		"AWS_SECRET_ACCESS_KEY=bench",
		"AWS_SESSION_TOKEN=bench",
		"STAMPEDE_TABLE=stampede-bench",
		"STAMPEDE_HEARTBEAT_MULTIPLIER=3",
		"STAMPEDE_MAX_HEARTBEAT_SECONDS=10",
		"STAMPEDE_LOG_LEVEL=info",
		"STAMPEDE_MANAGED_BUCKETS=" + benchBucket,
	}
	if caBundle != "" {
		env = append(env, "AWS_CA_BUNDLE="+caBundle)
	}
	return env
}

// startOnce starts bin under the shared Lambda Runtime API harness and
// times it from process start to its first /next request, then stops it.
// With inittrace it also returns the sum of the package initialisers'
// clock times.
func startOnce(ctx context.Context, bin, name string, env []string, inittrace bool) (time.Duration, time.Duration, error) {
	if inittrace {
		env = append(env, "GODEBUG=inittrace=1")
	}
	f, err := lambdaharness.Start(bin, lambdaharness.Options{Name: "stampede-" + name, Env: env})
	if err != nil {
		return 0, 0, err
	}
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	init, err := f.WaitInit(waitCtx)
	// Stopping waits for the process and for its output to be copied.
	f.Stop()
	if err != nil {
		return 0, 0, err
	}
	var pkgInit time.Duration
	if inittrace {
		pkgInit = sumInitTrace(f.Logs.String())
	}
	return init, pkgInit, nil
}

// initTraceLine matches the runtime's "init <pkg> @<t> ms, <clock> ms
// clock, ..." lines.
var initTraceLine = regexp.MustCompile(`(?m)^init \S+ @[0-9.]+ ms, ([0-9.]+) ms clock`)

// sumInitTrace adds up the clock times of an inittrace output.
func sumInitTrace(out string) time.Duration {
	var total float64
	for _, m := range initTraceLine.FindAllStringSubmatch(out, -1) {
		ms, err := strconv.ParseFloat(m[1], 64)
		if err == nil {
			total += ms
		}
	}
	return time.Duration(total * float64(time.Millisecond))
}

// writeCABundle writes a PEM bundle into dir: a freshly generated CA and,
// with systemRoots, the machine's public roots after it. It returns the
// path and the number of certificates.
func writeCABundle(dir string, systemRoots bool) (string, int, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", 0, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "Stampede benchmark CA", Organization: []string{"Stampede"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", 0, err
	}
	bundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	certs := 1
	if systemRoots {
		for _, f := range []string{"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"} {
			if roots, err := os.ReadFile(f); err == nil {
				bundle = append(bundle, roots...)
				certs += bytes.Count(roots, []byte("-----BEGIN CERTIFICATE-----"))
				break
			}
		}
	}
	path := filepath.Join(dir, "ca-bundle.pem")
	return path, certs, os.WriteFile(path, bundle, 0o644)
}

func minDuration(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	m := ds[0]
	for _, d := range ds[1:] {
		m = min(m, d)
	}
	return m
}
