using Engine.TestKit;

// One s3rver (or external endpoint) for the whole assembly; every test works under its own prefix.
[assembly: AssemblyFixture(typeof(S3Server))]
