package contract

// Environment variables the functions and the local server read. The stack
// sets those of FunctionEnv on every function.
const (
	// EnvTable names the DynamoDB table.
	EnvTable = "STAMPEDE_TABLE"
	// EnvHeartbeatMultiplier is how many heartbeats a reservation survives
	// without an extension.
	EnvHeartbeatMultiplier = "STAMPEDE_HEARTBEAT_MULTIPLIER"
	// EnvMaxHeartbeatSeconds clamps the heartbeat interval callers ask for.
	EnvMaxHeartbeatSeconds = "STAMPEDE_MAX_HEARTBEAT_SECONDS"
	// EnvManagedBuckets lists, comma-separated, the buckets whose objects
	// Stampede may check (verify) and delete (delete_blob).
	EnvManagedBuckets = "STAMPEDE_MANAGED_BUCKETS"
	// EnvLogLevel is the lowest level logged: debug, info (the default),
	// warn or error.
	EnvLogLevel = "STAMPEDE_LOG_LEVEL"
	// EnvDynamoDBEndpoint points at a DynamoDB other than AWS's (DynamoDB
	// Local, LocalStack). The SDK's own AWS_ENDPOINT_URL_DYNAMODB works too.
	EnvDynamoDBEndpoint = "STAMPEDE_DYNAMODB_ENDPOINT"
	// EnvS3Endpoint points at an S3-compatible endpoint (path-style). The
	// SDK's own AWS_ENDPOINT_URL_S3 works too.
	EnvS3Endpoint = "STAMPEDE_S3_ENDPOINT"
	// EnvRequestTimeout is the local server's per-request budget (a Go
	// duration such as 5s); every DynamoDB and S3 call runs within it.
	EnvRequestTimeout = "STAMPEDE_REQUEST_TIMEOUT"
	// EnvOutputExpirationDays is how many days the managed buckets keep an
	// object (their lifecycle rule); entries pointing into them live at
	// most that long. Empty or 0: no cap.
	EnvOutputExpirationDays = "STAMPEDE_OUTPUT_EXPIRATION_DAYS"
)

// FunctionEnv lists the variables a deployed function reads: the stack
// sets them, and only them.
func FunctionEnv() []string {
	return []string{EnvTable, EnvHeartbeatMultiplier, EnvMaxHeartbeatSeconds, EnvManagedBuckets, EnvLogLevel, EnvOutputExpirationDays}
}

// LogLevels are the values EnvLogLevel accepts, lowest first.
func LogLevels() []string { return []string{"debug", "info", "warn", "error"} }
