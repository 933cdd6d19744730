// Package layering has no code: its tests keep the module's packages
// depending on each other as designed, reading what each package imports
// from `go list` (test files excluded):
//
//   - only internal/dynamostore imports the DynamoDB SDK and only
//     internal/s3blobs the S3 SDK, so client construction and every
//     request live in one place each;
//   - internal/contract imports only the standard library, so every part,
//     the client and infra/ included, can share it;
//   - internal/manager knows nothing of Lambda, HTTP or the AWS SDK.
package layering
