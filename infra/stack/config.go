package stack

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// APIKind selects the API Gateway flavour in front of the functions.
type APIKind string

// The API flavours (context switch "api").
const (
	// APIHTTP is an API Gateway HTTP API (payload 2.0): cheaper and faster;
	// the default.
	APIHTTP APIKind = "http"
	// APIREST is an API Gateway REST API (payload 1.0 proxy): for private
	// endpoints in a VPC, WAF, usage plans, and LocalStack's free edition.
	APIREST APIKind = "rest"
)

// Architecture of the functions (context switch "arch").
const (
	ArchARM64 = "arm64"
	ArchX8664 = "x86_64"
)

// DefaultMemoryMB is the functions' memory size, from a measurement
// (docs/deploy.md, "Memory sizing"; `make measure-memory` repeats it): run
// under a local Lambda runtime API against DynamoDB Local, each function's
// bootstrap peaked at about 17 MiB RSS over 6,000–9,000 requests (11 MiB
// after init) and used about 0.9 ms of CPU per request. Memory is not the
// constraint: Lambda's 128 MB floor leaves 7× head-room. CPU is: Lambda
// allots CPU in proportion to memory (a full vCPU at 1,769 MB), so that CPU
// takes ~12 ms of wall time per request at 128 MB and ~6 ms at 256 MB, for
// under a cent more per million requests; beyond 256 MB the gain shrinks
// (3 ms at 512 MB) while the cost keeps doubling. Override with
// -c memory=N.
const DefaultMemoryMB = 256

// Config is the stack's configuration, read from the CDK context.
type Config struct {
	// Env names the environment: the stack is "Stampede-<Env>". "prod"
	// retains the table and the bucket and turns deletion protection on.
	Env string
	// API selects the API Gateway flavour.
	API APIKind
	// Example adds the example cached-task state machine.
	Example bool
	// OutputsExpirationDays expires objects in the outputs bucket after so
	// many days (0: never). The functions get it as
	// STAMPEDE_OUTPUT_EXPIRATION_DAYS and cap the lifetime of entries that
	// point into the bucket by it, so that no entry outlives its object.
	OutputsExpirationDays int
	// NoncurrentVersionExpirationDays is how long the versioned outputs
	// bucket keeps an overwritten or deleted object's previous version:
	// the window to recover from a wrong deletion.
	NoncurrentVersionExpirationDays int
	// AssetDir holds one folder per function, each with its "bootstrap"
	// binary, as written by `make build` (default "../build", relative to
	// the working directory, infra/).
	AssetDir string
	// Architecture of the binaries in AssetDir: "arm64" or "x86_64".
	Architecture string
	// MemoryMB is each function's memory size.
	MemoryMB int
	// TimeoutSeconds is each function's timeout.
	TimeoutSeconds int
	// HeartbeatMultiplier and MaxHeartbeatSeconds configure reservations
	// (STAMPEDE_HEARTBEAT_MULTIPLIER, STAMPEDE_MAX_HEARTBEAT_SECONDS).
	HeartbeatMultiplier int
	MaxHeartbeatSeconds int
	// LogLevel is STAMPEDE_LOG_LEVEL: debug, info, warn or error.
	LogLevel string
	// LogRetentionDays is the functions' log groups' retention.
	LogRetentionDays int
	// P99DurationAlarmMs is the p99 duration above which a function's
	// latency alarm fires.
	P99DurationAlarmMs int
	// AlarmTopicArn, if set, is an SNS topic every alarm notifies.
	AlarmTopicArn string
	// ThrottleRateLimit and ThrottleBurstLimit are the API stage's
	// throttling: steady requests per second and burst, over all callers.
	ThrottleRateLimit  int
	ThrottleBurstLimit int
	// ReservedConcurrency is each function's reserved concurrency: at
	// most that many concurrent executions (one caller cannot take the
	// account's concurrency), and that many always available. 0 reserves
	// none (accounts whose concurrency limit is too low to reserve any:
	// Lambda keeps 100 unreserved).
	ReservedConcurrency int
	// APIGatewayCloudWatchRole makes the REST variant create API Gateway's
	// account-wide CloudWatch Logs role, which REST access logs need (HTTP
	// APIs do not). Leave it off when the account already has one.
	APIGatewayCloudWatchRole bool
}

// Prod reports whether the environment keeps its data on deletion.
func (c Config) Prod() bool { return c.Env == "prod" }

// StackName is the CloudFormation stack's name.
func (c Config) StackName() string { return "Stampede-" + c.Env }

// Context keys, each settable with `cdk ... -c key=value` or
// `make synth ENV=... CDK_CONTEXT="key=value ..."`.
const (
	CtxEnv                   = "env"
	CtxAPI                   = "api"
	CtxExample               = "example"
	CtxOutputsExpirationDays = "outputsExpirationDays"
	CtxNoncurrentDays        = "noncurrentVersionExpirationDays"
	CtxAssetDir              = "assetDir"
	CtxArch                  = "arch"
	CtxMemory                = "memory"
	CtxTimeout               = "timeoutSeconds"
	CtxHeartbeatMultiplier   = "heartbeatMultiplier"
	CtxMaxHeartbeatSeconds   = "maxHeartbeatSeconds"
	CtxLogLevel              = "logLevel"
	CtxLogRetentionDays      = "logRetentionDays"
	CtxP99DurationAlarmMs    = "p99DurationAlarmMs"
	CtxAlarmTopicArn         = "alarmTopicArn"
	CtxThrottleRateLimit     = "throttleRateLimit"
	CtxThrottleBurstLimit    = "throttleBurstLimit"
	CtxReservedConcurrency   = "reservedConcurrency"
	CtxAPIGatewayCWRole      = "apiGatewayCloudWatchRole"
)

var envName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,19}$`)

// ConfigFromContext reads the configuration from node's context (set with
// -c on the CDK CLI or through the CDK_CONTEXT_JSON environment variable),
// applying the defaults, and validates it.
func ConfigFromContext(node constructs.Node) (Config, error) {
	get := func(key string) (string, bool) {
		v := node.TryGetContext(jsii.String(key))
		if v == nil {
			return "", false
		}
		return strings.TrimSpace(fmt.Sprint(v)), true
	}
	str := func(key, def string) string {
		if v, ok := get(key); ok && v != "" {
			return v
		}
		return def
	}
	var errs []error
	num := func(key string, def, min, max int) int {
		v, ok := get(key)
		if !ok || v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < min || n > max {
			errs = append(errs, fmt.Errorf("context %s=%q: want an integer in [%d, %d]", key, v, min, max))
			return def
		}
		return n
	}

	c := Config{
		Env:          str(CtxEnv, "dev"),
		API:          APIKind(strings.ToLower(str(CtxAPI, string(APIHTTP)))),
		AssetDir:     str(CtxAssetDir, filepath.Join("..", "build")),
		Architecture: str(CtxArch, ArchARM64),
		LogLevel:     strings.ToLower(str(CtxLogLevel, "info")),
	}
	if !envName.MatchString(c.Env) {
		errs = append(errs, fmt.Errorf("context env=%q: want a lower-case name like dev, staging or prod (letters, digits, '-', at most 20)", c.Env))
	}
	prod := c.Env == "prod"
	switch c.API {
	case APIHTTP, APIREST:
	default:
		errs = append(errs, fmt.Errorf("context api=%q: want http or rest", c.API))
	}
	boolean := func(key string) bool {
		switch v := strings.ToLower(str(key, "false")); v {
		case "true", "1", "yes":
			return true
		case "false", "0", "no":
		default:
			errs = append(errs, fmt.Errorf("context %s=%q: want true or false", key, v))
		}
		return false
	}
	c.Example = boolean(CtxExample)
	c.APIGatewayCloudWatchRole = boolean(CtxAPIGatewayCWRole)
	switch c.Architecture {
	case ArchARM64, ArchX8664:
	default:
		errs = append(errs, fmt.Errorf("context arch=%q: want arm64 or x86_64", c.Architecture))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("context logLevel=%q: want debug, info, warn or error", c.LogLevel))
	}
	// Defaults per environment: prod keeps more, and takes more traffic.
	expiration, noncurrent, retention := 30, 7, 14
	rate, burst, reserved := 100, 200, 10
	if prod {
		expiration, noncurrent, retention = 90, 30, 90
		rate, burst, reserved = 1000, 2000, 100
	}
	c.OutputsExpirationDays = num(CtxOutputsExpirationDays, expiration, 0, 36500)
	c.NoncurrentVersionExpirationDays = num(CtxNoncurrentDays, noncurrent, 1, 36500)
	c.ThrottleRateLimit = num(CtxThrottleRateLimit, rate, 1, 1000000)
	c.ThrottleBurstLimit = num(CtxThrottleBurstLimit, burst, 1, 1000000)
	c.ReservedConcurrency = num(CtxReservedConcurrency, reserved, 0, 100000)
	c.MemoryMB = num(CtxMemory, DefaultMemoryMB, 128, 10240)
	c.TimeoutSeconds = num(CtxTimeout, 10, 1, 900)
	c.HeartbeatMultiplier = num(CtxHeartbeatMultiplier, 3, 2, 100)
	c.MaxHeartbeatSeconds = num(CtxMaxHeartbeatSeconds, 10, 1, 3600)
	c.LogRetentionDays = num(CtxLogRetentionDays, retention, 1, 3653)
	c.P99DurationAlarmMs = num(CtxP99DurationAlarmMs, 1000, 1, 900000)
	c.AlarmTopicArn = str(CtxAlarmTopicArn, "")
	if c.AlarmTopicArn != "" && !strings.HasPrefix(c.AlarmTopicArn, "arn:") {
		errs = append(errs, fmt.Errorf("context alarmTopicArn=%q: want an SNS topic ARN", c.AlarmTopicArn))
	}
	return c, errors.Join(errs...)
}

// CheckAssets verifies that every function's binary is in c.AssetDir, so
// that a missing `make build` fails synthesis with a clear message rather
// than a stack with empty functions.
func (c Config) CheckAssets() error {
	var errs []error
	for _, f := range Functions() {
		p := filepath.Join(c.AssetDir, f.Name, "bootstrap")
		st, err := os.Stat(p)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("function asset %s is missing", p))
		case !st.Mode().IsRegular() || st.Size() == 0:
			errs = append(errs, fmt.Errorf("function asset %s is not a binary", p))
		}
	}
	if len(errs) > 0 {
		abs, _ := filepath.Abs(c.AssetDir)
		errs = append(errs, fmt.Errorf(`run "make build" at the repository root first: it compiles each function into build/<name>/bootstrap for linux/%s (asset folder: %s)`, c.goarch(), abs))
	}
	return errors.Join(errs...)
}

func (c Config) goarch() string {
	if c.Architecture == ArchX8664 {
		return "amd64"
	}
	return "arm64"
}
