using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using DuckDB.NET.Data;
using Engine.Identity;
using Engine.Runs;
using Engine.Storage;
using Engine.TestKit;
using Engine.Tests.Storage;
using Engine.Workspaces;
using Microsoft.Extensions.Logging.Abstractions;

namespace Engine.Tests.Identity;

/// <summary>
/// One of the example workspaces over real data (<c>datasets/workspaces/</c>), copied to a temp folder so that its runs
/// never write into the repository: every YAML file is copied as it is, except that each source's <c>location:</c> is
/// made absolute (resolved against the original workspace folder, so it still reads the shared files in place) and
/// <c>output:</c> points into the temp folder. The mapping, the CSV options and the identity rules are the
/// workspace's own.
/// </summary>
internal sealed partial class RealWorkspace : IDisposable
{
    private readonly TempDirectory _dir;

    public RealWorkspace(string relative)
    {
        SharedData.RequireRealDatasets();
        var root = SharedData.RepositoryRoot();
        Assert.NotNull(root);
        var original = Path.Combine(root.FullName, "datasets", "workspaces", relative);
        Assert.True(File.Exists(Path.Combine(original, Workspace.FileName)), $"no workspace at {original}");
        _dir = new TempDirectory("real-" + relative.Replace('/', '-'));
        try
        {
            Copy(relative, original);
        }
        catch
        {
            _dir.Dispose();
            throw;
        }
    }

    private void Copy(string relative, string original)
    {
        Directory.CreateDirectory(Folder);
        var files = Directory.EnumerateFiles(original, "*", SearchOption.AllDirectories)
            .Where(f => f.EndsWith(".yaml", StringComparison.Ordinal) || f.EndsWith(".yml", StringComparison.Ordinal));
        foreach (var file in files)
        {
            var name = Path.GetRelativePath(original, file);
            // A run of the original workspace (engine run) may have left output/ there: not part of the workspace.
            if (name.StartsWith("output" + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            {
                continue;
            }
            var text = File.ReadAllText(file);
            if (name == Workspace.FileName)
            {
                text = OutputKey().IsMatch(text)
                    ? Rewrite(OutputKey(), text, _ => Quote(Output))
                    : text.TrimEnd() + "\noutput: " + Quote(Output) + "\n";
            }
            else if (name.StartsWith("sources" + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            {
                text = Rewrite(LocationKey(), text, value =>
                {
                    var absolute = Path.GetFullPath(value, original);
                    Assert.True(File.Exists(absolute) || Directory.Exists(absolute), $"{relative}/{name}: location {absolute} does not exist");
                    return Quote(absolute);
                });
            }
            var target = Path.Combine(Folder, name);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.WriteAllText(target, text, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        }
    }

    /// <summary>The copied workspace.</summary>
    public string Folder => _dir.Combine("workspace");

    /// <summary>Where its runs go (outside the copy, so the copy holds exactly the workspace's files).</summary>
    public string Output => _dir.Combine("output");

    public string IdentityGlob(string runId) => Path.Combine(Output, "runs", runId, "identity", "*.parquet");

    /// <summary>Loads the copy and runs every stage in process, as <c>engine run</c> does.</summary>
    public async Task<(Workspace Workspace, IdentityReport Report)> RunAsync(string runId)
    {
        var (workspace, result) = await RunAllAsync(runId);
        return (workspace, result.Manifest.Identity!);
    }

    /// <summary>Loads the copy and runs every stage in process; returns the whole result.</summary>
    public async Task<(Workspace Workspace, RunResult Result)> RunAllAsync(string runId)
    {
        var workspace = WorkspaceLoader.Load(Folder);
        Assert.Equal(Output, workspace.Output);
        using var storage = new StorageResolver();
        var result = await new RunExecutor(storage, NullLogger.Instance).ExecuteAsync(workspace, new RunOptions
        {
            RunId = runId,
            AsOf = new DateTimeOffset(2026, 11, 2, 0, 0, 0, TimeSpan.Zero),
        }, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(RunStatus.Succeeded, result.Manifest.Status);
        return (workspace, result);
    }

    /// <summary>Replaces the value of the one top-level <paramref name="key"/> line (a trailing comment is dropped).</summary>
    private static string Rewrite(Regex key, string text, Func<string, string> replace)
    {
        var matches = key.Matches(text);
        Assert.Single(matches);
        var value = matches[0].Groups["value"].Value.Trim();
        if (value.Length >= 2 && value[0] == value[^1] && value[0] is '"' or '\'')
        {
            value = value[1..^1];
        }
        return key.Replace(text, m => m.Groups["key"].Value + replace(value));
    }

    /// <summary>A YAML single-quoted scalar: no escapes, so Windows paths survive too.</summary>
    private static string Quote(string value) => "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'";

    [GeneratedRegex(@"^(?<key>location:[ \t]*)(?<value>[^#\r\n]*?)[ \t]*(#[^\r\n]*)?(?=\r?$)", RegexOptions.Multiline)]
    private static partial Regex LocationKey();

    [GeneratedRegex(@"^(?<key>output:[ \t]*)(?<value>[^#\r\n]*?)[ \t]*(#[^\r\n]*)?(?=\r?$)", RegexOptions.Multiline)]
    private static partial Regex OutputKey();

    public void Dispose() => _dir.Dispose();
}

/// <summary>
/// Identity resolution on real data with real ground truth, each data set read in place through an example workspace
/// that maps the files' own columns (<c>datasets/workspaces/</c>, no conversion script), its output compared through
/// DuckDB with the truth read from the original CSV files. Skipped where the shared folder is missing.
/// </summary>
public sealed class RealDataIdentityTests
{
    private static string Csv(string path, string options = "header=true") =>
        $"read_csv('{path.Replace("'", "''", StringComparison.Ordinal)}', {options}, all_varchar=true)";

    private static DuckDBConnection Open(string identityGlob)
    {
        var connection = DuckDb.Open();
        DuckDb.Execute(connection, $"CREATE TABLE identity AS SELECT * FROM read_parquet('{identityGlob.Replace("'", "''", StringComparison.Ordinal)}')");
        return connection;
    }

    [Fact]
    public async Task Olist_profiles_reproduce_customer_unique_id()
    {
        var real = SharedData.RequireRealDatasets();
        using var ws = new RealWorkspace("olist");
        var watch = Stopwatch.StartNew();
        var (_, report) = await ws.RunAsync("olist");
        var runTime = watch.Elapsed;

        var data = Path.Combine(real, "olist-ecommerce-sample");
        using var db = Open(ws.IdentityGlob("olist"));
        // The truth: each customers row names the person (customer_unique_id) of one order's customer_id.
        DuckDb.Execute(db, $"CREATE TABLE customers AS SELECT customer_id, customer_unique_id FROM {Csv(Path.Combine(data, "olist_customers_dataset.csv"))}");
        DuckDb.Execute(db, $"CREATE TABLE orders AS SELECT order_id, customer_id FROM {Csv(Path.Combine(data, "olist_orders_dataset.csv"))}");
        DuckDb.Execute(db, """
            CREATE TABLE placed AS
            SELECT c.customer_id, c.customer_unique_id, by_id.profile_id AS id_profile, by_person.profile_id AS person_profile
            FROM customers c
            LEFT JOIN identity by_id ON by_id.identifier_type = 'customer_id' AND by_id.identifier_value = c.customer_id
            LEFT JOIN identity by_person ON by_person.identifier_type = 'customer_unique_id' AND by_person.identifier_value = c.customer_unique_id
            """);

        var customers = DuckDb.Long(db, "SELECT count(*) FROM customers");
        var customerIds = DuckDb.Long(db, "SELECT count(DISTINCT customer_id) FROM customers");
        var people = DuckDb.Long(db, "SELECT count(DISTINCT customer_unique_id) FROM customers");
        var repeatPeople = DuckDb.Long(db, "SELECT count(*) FROM (SELECT customer_unique_id FROM customers GROUP BY ALL HAVING count(DISTINCT customer_id) > 1)");
        var profiles = DuckDb.Long(db, "SELECT count(DISTINCT profile_id) FROM identity");
        var profilesOfCustomers = DuckDb.Long(db, "SELECT count(DISTINCT id_profile) FROM placed");
        var pairs = DuckDb.Long(db, "SELECT count(*) FROM (SELECT DISTINCT id_profile, customer_unique_id FROM placed)");
        var unplaced = DuckDb.Long(db, "SELECT count(*) FROM placed WHERE id_profile IS NULL OR person_profile IS NULL");
        var disagree = DuckDb.Long(db, "SELECT count(*) FROM placed WHERE id_profile <> person_profile");
        var repeatProfiles = DuckDb.Long(db, "SELECT count(*) FROM (SELECT profile_id FROM identity WHERE identifier_type = 'customer_id' GROUP BY ALL HAVING count(*) > 1)");
        var orders = DuckDb.Long(db, "SELECT count(*) FROM orders");
        // Each order's customer_id, as the orders file carries it, lands in the profile of its customer's person.
        var ordersPlaced = DuckDb.Long(db, """
            SELECT count(*) FROM orders o
            JOIN customers c USING (customer_id)
            JOIN identity by_id ON by_id.identifier_type = 'customer_id' AND by_id.identifier_value = o.customer_id
            JOIN identity by_person ON by_person.identifier_type = 'customer_unique_id' AND by_person.identifier_value = c.customer_unique_id
            WHERE by_id.profile_id = by_person.profile_id
            """);
        var shared = DuckDb.Long(db, "SELECT count(*) FROM identity WHERE shared OR profile_id IS NULL");

        TestContext.Current.SendDiagnosticMessage(
            $"olist: run {runTime.TotalSeconds:F2} s ({report.RowsRead:N0} rows read, {report.Identifiers:N0} identifiers, {report.Edges:N0} links); "
            + $"truth: {customers:N0} customers rows, {customerIds:N0} customer_ids, {people:N0} customer_unique_ids ({repeatPeople:N0} with 2+ customer_ids); "
            + $"engine: {profiles:N0} profiles ({repeatProfiles:N0} with 2+ customer_ids), largest {report.LargestProfile} identifiers; "
            + $"distinct (profile, customer_unique_id) pairs {pairs:N0}; customers rows whose customer_id and customer_unique_id profiles differ {disagree:N0}, unplaced {unplaced:N0}; "
            + $"orders in their person's profile {ordersPlaced:N0} of {orders:N0}; links refused {report.LinksRefused.Values.Sum():N0}; shared values {shared:N0}");

        // SOURCE.md and the workspace README: 8,135 orders, one customers row each, of 8,016 people, 73 with 2 to 5 ids.
        Assert.Equal(8135, customers);
        Assert.Equal(8135, customerIds);
        Assert.Equal(8016, people);
        Assert.Equal(73, repeatPeople);
        // Every customer_id and every customer_unique_id is in a profile, and each customers row's two are in the same one.
        Assert.Equal(0, unplaced);
        Assert.Equal(0, disagree);
        Assert.Equal(0, shared);
        // The profiles and customer_unique_id partition the customer_ids identically: the pairs are as many as either side.
        Assert.Equal(people, pairs);
        Assert.Equal(people, profilesOfCustomers);
        // Nothing else makes a profile of its own: the orders' customer_ids are the customers' ones.
        Assert.Equal(people, profiles);
        Assert.Equal(people, report.Profiles);
        Assert.Equal(repeatPeople, repeatProfiles);
        Assert.Equal(orders, ordersPlaced);
        Assert.Equal(0, report.LinksRefused.Values.Sum());
    }

    /// <summary>A level's figures, pairs counted over the 25,000 records (party, recid).</summary>
    private sealed record LinkageScore(int Level, long Records, long Persons, long Profiles, long TruePairs, long PredictedPairs, long CorrectPairs, long LinksRefused, TimeSpan RunTime)
    {
        public double Precision => PredictedPairs == 0 ? 1 : (double)CorrectPairs / PredictedPairs;

        public double Recall => TruePairs == 0 ? 1 : (double)CorrectPairs / TruePairs;

        public string Row => string.Create(CultureInfo.InvariantCulture,
            $"| ocp{Level,-2} | {Records,7:N0} | {Persons,7:N0} | {Profiles,8:N0} | {TruePairs,10:N0} | {PredictedPairs,15:N0} | {CorrectPairs,13:N0} | {PredictedPairs - CorrectPairs,11:N0} | {Precision,9:F5} | {Recall,7:F5} | {LinksRefused,7:N0} | {RunTime.TotalSeconds,6:F2} |");

        public const string Header =
            "| level | records | persons | profiles | true pairs | predicted pairs | correct pairs | wrong pairs | precision |  recall | refused |  run s |";
    }

    private static async Task<LinkageScore> ScoreNcvoterAsync(string real, int level)
    {
        using var ws = new RealWorkspace($"ncvoter/ocp{level}");
        var watch = Stopwatch.StartNew();
        var (_, report) = await ws.RunAsync("ncvoter");
        var runTime = watch.Elapsed;

        using var db = Open(ws.IdentityGlob("ncvoter"));
        // The truth, from the original files: party p's records are the identifiers voter_p = recid, and records with
        // the same recid are one person. Line 1 of every file is a header (at ocp_0 the wrong, 19-column one), then the
        // five fields recid, givenname, surname, suburb, postcode.
        var parties = Enumerable.Range(0, 5).Select(p =>
        {
            var file = Path.Combine(real, "ncvoter-multisource-5k", $"ncvr_numrec_5000_modrec_2_ocp_{level}_myp_{p}_nump_5.csv");
            return $"SELECT 'voter_{p}' AS identifier_type, recid FROM {Csv(file, "header=false, skip=1, names=['recid', 'givenname', 'surname', 'suburb', 'postcode']")}";
        });
        DuckDb.Execute(db, $"CREATE TABLE truth AS {string.Join(" UNION ALL ", parties)}");
        DuckDb.Execute(db, """
            CREATE TABLE records AS
            SELECT t.identifier_type, t.recid, i.profile_id
            FROM truth t LEFT JOIN identity i ON i.identifier_type = t.identifier_type AND i.identifier_value = t.recid
            """);

        // Every record is one identifier of the output, in a profile, and no party has two records of one voter.
        Assert.Equal(25_000, DuckDb.Long(db, "SELECT count(*) FROM records"));
        Assert.Equal(25_000, DuckDb.Long(db, "SELECT count(*) FROM (SELECT DISTINCT identifier_type, recid FROM records)"));
        Assert.Equal(0, DuckDb.Long(db, "SELECT count(*) FROM records WHERE profile_id IS NULL"));
        Assert.Equal(25_000, DuckDb.Long(db, "SELECT count(*) FROM identity WHERE identifier_type LIKE 'voter_%'"));
        // limit 1 per voter type: a profile never holds two records of one party.
        Assert.Equal(1, DuckDb.Long(db, "SELECT max(n) FROM (SELECT count(*) n FROM records GROUP BY profile_id, identifier_type)"));

        static string Pairs(string groups) => $"SELECT coalesce(sum(n * (n - 1) // 2), 0)::BIGINT FROM (SELECT count(*)::BIGINT n FROM records GROUP BY {groups})";
        var score = new LinkageScore(
            level,
            DuckDb.Long(db, "SELECT count(*) FROM records"),
            DuckDb.Long(db, "SELECT count(DISTINCT recid) FROM records"),
            DuckDb.Long(db, "SELECT count(DISTINCT profile_id) FROM records"),
            DuckDb.Long(db, Pairs("recid")),
            DuckDb.Long(db, Pairs("profile_id")),
            DuckDb.Long(db, Pairs("profile_id, recid")),
            report.LinksRefused.Values.Sum(),
            runTime);
        // SOURCE.md: 18,000 persons at every level (15,500 in one party, 500 in 2, 500 in 3, 500 in 4, 1,000 in all 5).
        Assert.Equal(18_000, score.Persons);
        Assert.Equal(500 * 1 + 500 * 3 + 500 * 6 + 1000 * 10, score.TruePairs);
        return score;
    }

    /// <summary>
    /// Floors: 0.99 for precision and recall at ocp0, as the issue asks. At ocp20 and ocp40 typos break exact keys, so
    /// recall falls; the floors there are sanity floors a few points under what the engine measured when this test
    /// was written, to catch a regression, not to set a target. Measured (pairwise over the 15,000 true pairs):
    /// ocp0 precision 0.99927, recall 0.99973; ocp20 0.99886, 0.64480; ocp40 0.99799, 0.36487. Each record carries one key,
    /// so a profile is the records of one name and postcode: its 11 wrong pairs at every level are namesakes (different
    /// voters with the same name and postcode, see the workspace README).
    /// </summary>
    [Fact]
    public async Task Ncvoter_composite_key_stitches_the_five_parties_at_0_20_and_40_percent_corruption()
    {
        var real = SharedData.RequireRealDatasets();
        (int Level, double Precision, double Recall)[] floors = [(0, 0.99, 0.99), (20, 0.99, 0.60), (40, 0.99, 0.33)];
        var scores = new List<LinkageScore>();
        foreach (var floor in floors)
        {
            scores.Add(await ScoreNcvoterAsync(real, floor.Level));
        }

        TestContext.Current.SendDiagnosticMessage(
            "ncvoter, name_postcode across 5 parties x 5,000 records; pairwise over record pairs, truth = same recid\n"
            + Table(scores));
        foreach (var (score, (_, precision, recall)) in scores.Zip(floors))
        {
            Assert.True(score.Precision >= precision, $"ocp{score.Level}: precision {score.Precision:F5} < {precision} ({score.PredictedPairs - score.CorrectPairs:N0} wrong pairs)");
            Assert.True(score.Recall >= recall, $"ocp{score.Level}: recall {score.Recall:F5} < {recall} ({score.TruePairs - score.CorrectPairs:N0} of {score.TruePairs:N0} true pairs missed)");
        }
    }

    private static string Table(IEnumerable<LinkageScore> scores) =>
        string.Join("\n", [LinkageScore.Header, .. scores.Select(s => s.Row)]);
}
