using System.Globalization;
using System.Text.RegularExpressions;
using Engine.Connectors.Holdouts;
using Engine.Workspaces;
using YamlDotNet.RepresentationModel;

namespace Engine.Connectors.Destinations;

/// <summary>
/// Reads <c>delivery.yaml</c> and <c>destinations/*.yaml</c> of a loaded workspace and checks them against it
/// (segments, identifier types, profile columns, sources), reporting every problem at file, line and column.
/// </summary>
public static partial class DestinationsLoader
{
    public const string Folder = "destinations";

    private static readonly string[] DestinationKeys =
    [
        "name", "description", "type", "segments", "mode", "channel", "consent", "identify_by", "fields", "batch_size",
        "rate_limit", "concurrency", "retry", "timeout_seconds", "frequency_cap", "quiet_hours", "settings", "credentials", "holdout",
    ];

    private static readonly string[] SettingsKeys = ["consent", "suppression", "timezone", "ledger", "outcomes"];

    private static readonly string[] OutcomeKeys = ["description", "source", "filter", "window_days"];

    /// <summary>Loads the delivery configuration of <paramref name="workspace"/>; throws <see cref="WorkspaceException"/> listing every error.</summary>
    public static DeliveryConfiguration Load(Workspace workspace)
    {
        ArgumentNullException.ThrowIfNull(workspace);
        var errors = new List<WorkspaceError>();
        var settings = ReadSettings(workspace, errors);
        var destinations = new List<DestinationDefinition>();
        foreach (var file in WorkspaceYaml.Files(workspace.Directory, Folder))
        {
            if (WorkspaceYaml.Parse(workspace.Directory, file, errors) is { } node && ReadDestination(node, file, workspace, settings, errors) is { } destination)
            {
                destinations.Add(destination);
            }
        }
        if (errors.Count > 0)
        {
            throw new WorkspaceException(errors);
        }
        return new DeliveryConfiguration(settings, destinations);
    }

    private static DeliverySettings ReadSettings(Workspace workspace, List<WorkspaceError> errors)
    {
        var file = DeliverySettings.FileName;
        var consentSource = workspace.Sources.Any(s => s.Name == "consent") ? "consent" : null;
        if (!System.IO.File.Exists(Path.Combine(workspace.Directory, file)))
        {
            return new DeliverySettings { ConsentSource = consentSource };
        }
        if (WorkspaceYaml.Parse(workspace.Directory, file, errors) is not { } root)
        {
            return new DeliverySettings();
        }
        var reader = new YamlMappingReader(root, file, errors);
        reader.CheckKeys(SettingsKeys);
        IReadOnlyList<string> channels = ["email", "sms", "ads"];
        string? suppression = null;
        string? timezoneColumn = null;
        var timezone = TimeZoneInfo.Utc;
        var ledger = LedgerKind.Sqlite;
        string? ledgerPath = null;
        string? ledgerConnection = null;
        if (reader.Mapping("consent") is { } consent)
        {
            var r = new YamlMappingReader(consent, file, errors);
            r.CheckKeys(["source", "channels"]);
            if (r.Scalar("source") is { } source)
            {
                consentSource = CheckSource(source, workspace, file, errors, ["identifier_type", "identifier_value", "channel", "status", "ts"]);
            }
            if (r.Any("channels") is { } list)
            {
                channels = Names(list, file, errors, "channels");
            }
        }
        if (reader.Mapping("suppression") is { } suppressionNode)
        {
            var r = new YamlMappingReader(suppressionNode, file, errors);
            r.CheckKeys(["source"]);
            if (r.Scalar("source", required: true) is { } source)
            {
                suppression = CheckSource(source, workspace, file, errors, ["identifier_type", "identifier_value"]);
            }
        }
        if (reader.Mapping("timezone") is { } timezoneNode)
        {
            var r = new YamlMappingReader(timezoneNode, file, errors);
            r.CheckKeys(["column", "default"]);
            if (r.Scalar("column") is { } column)
            {
                timezoneColumn = CheckColumn(column, workspace, file, errors);
            }
            if (r.Scalar("default") is { } zone)
            {
                if (TimeZones.Find(zone.Value ?? "") is { } found)
                {
                    timezone = found;
                }
                else
                {
                    errors.Add(WorkspaceYaml.At(file, zone, $"unknown time zone '{zone.Value}' (an IANA name such as Europe/Berlin)"));
                }
            }
        }
        if (reader.Mapping("ledger") is { } ledgerNode)
        {
            var r = new YamlMappingReader(ledgerNode, file, errors);
            r.CheckKeys(["type", "path", "connection_env"]);
            if (r.Scalar("type") is { } type)
            {
                switch (type.Value)
                {
                    case "sqlite": ledger = LedgerKind.Sqlite; break;
                    case "postgres": ledger = LedgerKind.Postgres; break;
                    default: errors.Add(WorkspaceYaml.At(file, type, $"unknown ledger type '{type.Value}' (sqlite or postgres)")); break;
                }
            }
            ledgerPath = r.String("path");
            if (r.Scalar("connection_env") is { } variable)
            {
                ledgerConnection = CheckVariable(variable, file, errors);
            }
            if (ledger == LedgerKind.Postgres && ledgerConnection is null)
            {
                errors.Add(WorkspaceYaml.At(file, ledgerNode, "a postgres ledger needs 'connection_env': the environment variable holding its connection string"));
            }
        }
        var outcomes = reader.Mapping("outcomes") is { } outcomesNode ? ReadOutcomes(outcomesNode, workspace, file, errors) : [];
        return new DeliverySettings
        {
            Outcomes = outcomes,
            ConsentSource = consentSource,
            ConsentChannels = channels,
            SuppressionSource = suppression,
            TimezoneColumn = timezoneColumn,
            DefaultTimezone = timezone,
            Ledger = ledger,
            LedgerPath = ledgerPath,
            LedgerConnectionVariable = ledgerConnection,
        };
    }

    private static DestinationDefinition? ReadDestination(YamlMappingNode node, string file, Workspace workspace, DeliverySettings settings, List<WorkspaceError> errors)
    {
        var before = errors.Count;
        var reader = new YamlMappingReader(node, file, errors);
        reader.CheckKeys(DestinationKeys);
        var stem = Path.GetFileNameWithoutExtension(file);
        var name = stem;
        if (reader.Scalar("name", required: true) is { } nameNode)
        {
            name = nameNode.Value ?? "";
            if (name != stem)
            {
                errors.Add(WorkspaceYaml.At(file, nameNode, $"the destination's name '{name}' must be its file's name ('{stem}')"));
            }
        }

        DestinationTypeInfo? info = null;
        if (reader.Scalar("type", required: true) is { } typeNode)
        {
            info = DestinationTypeInfo.Find(typeNode.Value ?? "");
            if (info is null)
            {
                errors.Add(WorkspaceYaml.At(file, typeNode, $"unknown destination type '{typeNode.Value}'{Hint(typeNode.Value, DestinationTypeInfo.All.Select(t => t.Name))}"));
            }
        }

        var segments = new List<string>();
        if (reader.Any("segments") is { } segmentsNode)
        {
            foreach (var scalar in Scalars(segmentsNode, file, errors, "segments"))
            {
                var segment = scalar.Value ?? "";
                if (workspace.Segments.Any(s => s.Name == segment))
                {
                    segments.Add(segment);
                }
                else
                {
                    errors.Add(WorkspaceYaml.At(file, scalar, $"unknown segment '{segment}'{Hint(segment, workspace.Segments.Select(s => s.Name))}"));
                }
            }
            if (segments.Count == 0 && errors.Count == before)
            {
                errors.Add(WorkspaceYaml.At(file, segmentsNode, "'segments' lists no segment"));
            }
        }
        else
        {
            errors.Add(WorkspaceYaml.At(file, node, "missing required key 'segments' (the segments this destination receives)"));
        }

        var mode = SyncMode.Mirror;
        if (reader.Scalar("mode") is { } modeNode)
        {
            switch (modeNode.Value)
            {
                case "mirror": mode = SyncMode.Mirror; break;
                case "add_only": mode = SyncMode.AddOnly; break;
                case "upsert": mode = SyncMode.Upsert; break;
                default: errors.Add(WorkspaceYaml.At(file, modeNode, $"unknown mode '{modeNode.Value}'{Hint(modeNode.Value, ["mirror", "add_only", "upsert"])}")); break;
            }
            if (info is not null && !info.Modes.Contains(mode))
            {
                errors.Add(WorkspaceYaml.At(file, modeNode, $"a {info.Name} destination takes mode {string.Join(" or ", info.Modes.Select(ModeName))}"));
            }
        }

        var consent = info?.DefaultConsent ?? ConsentRule.Required;
        var consentNode = reader.Scalar("consent");
        if (consentNode is not null)
        {
            switch (consentNode.Value)
            {
                case "required": consent = ConsentRule.Required; break;
                case "revocation_only": consent = ConsentRule.RevocationOnly; break;
                case "none": consent = ConsentRule.None; break;
                default: errors.Add(WorkspaceYaml.At(file, consentNode, $"unknown consent rule '{consentNode.Value}' (required, revocation_only or none)")); break;
            }
        }
        var channelNode = reader.Scalar("channel");
        var channel = channelNode?.Value ?? info?.DefaultChannel;
        if (channelNode is not null && !settings.ConsentChannels.Contains(channel!))
        {
            errors.Add(WorkspaceYaml.At(file, channelNode, $"unknown channel '{channel}'{Hint(channel, settings.ConsentChannels)} (the consent channels of {DeliverySettings.FileName})"));
        }
        if (consent != ConsentRule.None)
        {
            if (channel is null)
            {
                errors.Add(WorkspaceYaml.At(file, consentNode ?? (YamlNode)node, "consent is checked per channel: add 'channel' (email, sms, ads…), or 'consent: none' for a first-party system"));
            }
            if (settings.ConsentSource is null)
            {
                errors.Add(WorkspaceYaml.At(file, consentNode ?? (YamlNode)node, $"consent is required but the workspace has no consent source: add a source named 'consent' or set consent.source in {DeliverySettings.FileName}"));
            }
        }

        var identifyBy = new List<string>();
        if (reader.Any("identify_by") is { } identifyNode)
        {
            foreach (var scalar in Scalars(identifyNode, file, errors, "identify_by"))
            {
                if (workspace.Identity.Find(scalar.Value ?? "") is null)
                {
                    errors.Add(WorkspaceYaml.At(file, scalar, $"unknown identifier type '{scalar.Value}'{Hint(scalar.Value, workspace.Identity.Types.Select(t => t.Name))}"));
                }
                else
                {
                    identifyBy.Add(scalar.Value!);
                }
            }
        }
        else if (info is not null)
        {
            identifyBy.AddRange(info.DefaultIdentifyBy.Where(t => workspace.Identity.Find(t) is not null));
        }
        if (info is { Type: DestinationType.MetaCustomAudiences or DestinationType.GoogleCustomerMatch })
        {
            foreach (var type in identifyBy)
            {
                if (workspace.Identity.Find(type)!.Kind is not (Identity.NormalizerKind.Email or Identity.NormalizerKind.Phone))
                {
                    errors.Add(WorkspaceYaml.At(file, reader.Any("identify_by") ?? node, $"{info.Name} matches on hashed emails and phones; '{type}' is neither"));
                }
            }
        }
        if (identifyBy.Count == 0 && info is not null && info.Type != DestinationType.Postgres && errors.Count == before)
        {
            errors.Add(WorkspaceYaml.At(file, node, "the destination matches profiles on no identifier type: add 'identify_by' (such as [email])"));
        }

        var fields = new List<(string, string)>();
        if (reader.Mapping("fields") is { } fieldsNode)
        {
            foreach (var (key, value) in fieldsNode.Children)
            {
                if (value is not YamlScalarNode column)
                {
                    errors.Add(WorkspaceYaml.At(file, value, "a field maps to one profile column: field_name: column_name"));
                    continue;
                }
                if (CheckColumn(column, workspace, file, errors) is { } checkedColumn)
                {
                    fields.Add((((YamlScalarNode)key).Value ?? "", checkedColumn));
                }
            }
        }
        if (mode == SyncMode.Upsert && fields.Count == 0 && errors.Count == before)
        {
            errors.Add(WorkspaceYaml.At(file, reader.Scalar("mode")!, "mode upsert writes profile fields: add 'fields' (destination_field: profile_column)"));
        }

        var batchSize = info?.MaxBatchSize ?? 1;
        if (reader.Scalar("batch_size") is { } batchNode && Int(batchNode, file, errors, 1, info?.MaxBatchSize ?? int.MaxValue,
            info is null ? "" : $" ({info.Name} accepts at most {info.MaxBatchSize:N0} records per request)") is { } batch)
        {
            batchSize = batch;
        }

        var rate = info?.DefaultRateLimit ?? new RateLimit(1, 1, 1);
        if (reader.Mapping("rate_limit") is { } rateNode)
        {
            var r = new YamlMappingReader(rateNode, file, errors);
            r.CheckKeys(["requests", "per_seconds", "burst"]);
            var requests = r.Scalar("requests", required: true) is { } q ? Int(q, file, errors, 1, 1_000_000, "") : null;
            var seconds = r.Scalar("per_seconds") is { } s ? Int(s, file, errors, 1, 86_400, "") : 1;
            var burst = r.Scalar("burst") is { } b ? Int(b, file, errors, 1, 1_000_000, "") : requests;
            if (requests is not null && seconds is not null && burst is not null)
            {
                rate = new RateLimit(requests.Value, seconds.Value, burst.Value);
            }
        }

        var concurrency = reader.Scalar("concurrency") is { } concurrencyNode ? Int(concurrencyNode, file, errors, 1, 256, "") ?? 4 : 4;
        var retry = RetrySettings.Default;
        if (reader.Mapping("retry") is { } retryNode)
        {
            var r = new YamlMappingReader(retryNode, file, errors);
            r.CheckKeys(["attempts", "base_delay_ms", "max_delay_ms"]);
            var attempts = r.Scalar("attempts") is { } a ? Int(a, file, errors, 1, 100, "") : retry.Attempts;
            var baseDelay = r.Scalar("base_delay_ms") is { } d ? Int(d, file, errors, 0, 3_600_000, "") : (int)retry.BaseDelay.TotalMilliseconds;
            var maxDelay = r.Scalar("max_delay_ms") is { } m ? Int(m, file, errors, 0, 3_600_000, "") : (int)retry.MaxDelay.TotalMilliseconds;
            if (attempts is not null && baseDelay is not null && maxDelay is not null)
            {
                retry = new RetrySettings(attempts.Value, TimeSpan.FromMilliseconds(baseDelay.Value), TimeSpan.FromMilliseconds(maxDelay.Value));
            }
        }
        var timeout = reader.Scalar("timeout_seconds") is { } timeoutNode ? Int(timeoutNode, file, errors, 1, 3_600, "") ?? 30 : 30;

        FrequencyCap? cap = null;
        if (reader.Mapping("frequency_cap") is { } capNode)
        {
            var r = new YamlMappingReader(capNode, file, errors);
            r.CheckKeys(["sends", "per_days"]);
            var sends = r.Scalar("sends", required: true) is { } sn ? Int(sn, file, errors, 1, 1_000_000, "") : null;
            var days = r.Scalar("per_days", required: true) is { } dn ? Int(dn, file, errors, 1, 3_650, "") : null;
            if (sends is not null && days is not null)
            {
                cap = new FrequencyCap(sends.Value, TimeSpan.FromDays(days.Value));
            }
            if (channel is null)
            {
                errors.Add(WorkspaceYaml.At(file, capNode, "a frequency cap counts sends per channel: add 'channel'"));
            }
        }

        QuietHours? quiet = null;
        if (reader.Mapping("quiet_hours") is { } quietNode)
        {
            var r = new YamlMappingReader(quietNode, file, errors);
            r.CheckKeys(["start", "end"]);
            var start = r.Scalar("start", required: true) is { } st ? Time(st, file, errors) : null;
            var end = r.Scalar("end", required: true) is { } en ? Time(en, file, errors) : null;
            if (start is not null && end is not null)
            {
                quiet = new QuietHours(start.Value, end.Value);
            }
        }

        HoldoutSettings? holdout = null;
        if (reader.Mapping("holdout") is { } holdoutNode)
        {
            holdout = ReadHoldout(holdoutNode, file, settings, errors);
        }

        var settingsValues = new Dictionary<string, string>(StringComparer.Ordinal);
        var settingsNode = reader.Mapping("settings");
        if (settingsNode is not null)
        {
            foreach (var (key, value) in settingsNode.Children)
            {
                var settingName = ((YamlScalarNode)key).Value ?? "";
                if (info is not null && !info.RequiredSettings.Contains(settingName) && !info.OptionalSettings.Contains(settingName))
                {
                    errors.Add(WorkspaceYaml.At(file, key, $"unknown setting '{settingName}' for a {info.Name} destination{Hint(settingName, info.RequiredSettings.Concat(info.OptionalSettings))}"));
                }
                else if (value is YamlScalarNode scalar)
                {
                    settingsValues[settingName] = scalar.Value ?? "";
                }
                else
                {
                    errors.Add(WorkspaceYaml.At(file, value, $"setting '{settingName}' must be a single value"));
                }
            }
        }
        foreach (var required in info?.RequiredSettings ?? [])
        {
            if (!settingsValues.ContainsKey(required))
            {
                errors.Add(WorkspaceYaml.At(file, settingsNode ?? (YamlNode)node, $"a {info!.Name} destination needs setting '{required}'"));
            }
        }
        if (info?.Type == DestinationType.File && settingsValues.TryGetValue("format", out var format) && format is not ("csv" or "parquet"))
        {
            errors.Add(WorkspaceYaml.At(file, settingsNode!, $"file format '{format}' is not csv or parquet"));
        }

        var credentials = new Dictionary<string, string>(StringComparer.Ordinal);
        var credentialsNode = reader.Mapping("credentials");
        if (credentialsNode is not null)
        {
            foreach (var (key, value) in credentialsNode.Children)
            {
                var credential = ((YamlScalarNode)key).Value ?? "";
                if (info is not null && !info.RequiredCredentials.Contains(credential) && !info.OptionalCredentials.Contains(credential))
                {
                    errors.Add(WorkspaceYaml.At(file, key, $"unknown credential '{credential}' for a {info.Name} destination (it takes {Known(info.RequiredCredentials.Concat(info.OptionalCredentials))})"));
                }
                else if (value is YamlScalarNode scalar && CheckVariable(scalar, file, errors) is { } variable)
                {
                    credentials[credential] = variable;
                }
            }
        }
        foreach (var required in info?.RequiredCredentials ?? [])
        {
            if (!credentials.ContainsKey(required) && (credentialsNode is null || credentialsNode.Children.Count == 0 || !credentialsNode.Children.Keys.Any(k => ((YamlScalarNode)k).Value == required)))
            {
                errors.Add(WorkspaceYaml.At(file, credentialsNode ?? (YamlNode)node,
                    $"a {info!.Name} destination needs credential '{required}': the name of the environment variable holding it, such as {required}: {name.ToUpperInvariant()}_{required.ToUpperInvariant()}"));
            }
        }

        if (errors.Count > before || info is null)
        {
            return null;
        }
        return new DestinationDefinition
        {
            Name = name,
            File = file,
            Description = reader.String("description") ?? "",
            Type = info.Type,
            Segments = segments,
            Mode = mode,
            Channel = consent == ConsentRule.None && channelNode is null && cap is null ? null : channel,
            Consent = consent,
            IdentifyBy = identifyBy,
            Fields = fields,
            BatchSize = batchSize,
            RateLimit = rate,
            Concurrency = concurrency,
            Retry = retry,
            Timeout = TimeSpan.FromSeconds(timeout),
            FrequencyCap = cap,
            QuietHours = quiet,
            Holdout = holdout,
            Settings = settingsValues,
            Credentials = credentials,
        };
    }

    private static List<OutcomeDefinition> ReadOutcomes(YamlMappingNode node, Workspace workspace, string file, List<WorkspaceError> errors)
    {
        var outcomes = new List<OutcomeDefinition>();
        foreach (var (key, value) in node.Children)
        {
            var name = (key as YamlScalarNode)?.Value ?? "";
            if (!OutcomeName().IsMatch(name))
            {
                errors.Add(WorkspaceYaml.At(file, key, $"outcome name '{name}' must be lower-case letters, digits and underscores, starting with a letter"));
                continue;
            }
            if (value is not YamlMappingNode mapping)
            {
                errors.Add(WorkspaceYaml.At(file, value, $"outcome '{name}' must be a mapping: source, filter, window_days"));
                continue;
            }
            var before = errors.Count;
            var r = new YamlMappingReader(mapping, file, errors);
            r.CheckKeys(OutcomeKeys);
            SourceDefinition? source = null;
            if (r.Scalar("source", required: true) is { } sourceNode)
            {
                var sourceName = sourceNode.Value ?? "";
                source = workspace.Sources.FirstOrDefault(s => s.Name == sourceName);
                if (source is null)
                {
                    errors.Add(WorkspaceYaml.At(file, sourceNode, $"unknown source '{sourceName}'{Hint(sourceName, workspace.Sources.Select(s => s.Name))}"));
                }
                else if (source.TimestampColumn is null)
                {
                    errors.Add(WorkspaceYaml.At(file, sourceNode, $"source '{sourceName}' has no 'timestamp' column ({source.File}): an outcome needs the time of each event"));
                    source = null;
                }
                else if (source.Identifiers.Count == 0)
                {
                    errors.Add(WorkspaceYaml.At(file, sourceNode, $"source '{sourceName}' declares no identifiers ({source.File}): its events cannot be matched to profiles"));
                    source = null;
                }
            }
            var filters = new List<OutcomeFilter>();
            if (r.Mapping("filter", required: true) is { } filterNode)
            {
                foreach (var (columnKey, values) in filterNode.Children)
                {
                    var column = (columnKey as YamlScalarNode)?.Value ?? "";
                    if (source is not null)
                    {
                        var spec = source.Schema.Find(column);
                        if (spec is null)
                        {
                            errors.Add(WorkspaceYaml.At(file, columnKey, $"source '{source.Name}' has no column '{column}'{Hint(column, source.Schema.Columns.Select(c => c.Name))}"));
                            continue;
                        }
                        if (spec.Type != Storage.ColumnType.String)
                        {
                            errors.Add(WorkspaceYaml.At(file, columnKey, $"an outcome filter compares text: column '{column}' of source '{source.Name}' is {Storage.DataSchema.Describe(spec.Type)}"));
                            continue;
                        }
                    }
                    var listed = Scalars(values, file, errors, column);
                    if (listed.Count == 0)
                    {
                        errors.Add(WorkspaceYaml.At(file, values, $"filter '{column}' lists no value"));
                        continue;
                    }
                    filters.Add(new OutcomeFilter(column, [.. listed.Select(v => v.Value ?? "")], (int)values.Start.Line, (int)values.Start.Column));
                }
                if (filterNode.Children.Count == 0)
                {
                    errors.Add(WorkspaceYaml.At(file, filterNode, "an outcome's filter names at least one column, such as { type: order_completed }"));
                }
            }
            var window = r.Scalar("window_days", required: true) is { } windowNode ? Int(windowNode, file, errors, 1, 3_650, " (days after entering the segment)") : null;
            if (errors.Count > before || window is null || source is null)
            {
                continue;
            }
            outcomes.Add(new OutcomeDefinition
            {
                Name = name,
                File = file,
                Line = (int)key.Start.Line,
                Position = (int)key.Start.Column,
                Description = r.String("description") ?? "",
                Source = source.Name,
                Filters = filters,
                WindowDays = window.Value,
            });
        }
        return outcomes;
    }

    private static HoldoutSettings? ReadHoldout(YamlMappingNode node, string file, DeliverySettings settings, List<WorkspaceError> errors)
    {
        var before = errors.Count;
        var r = new YamlMappingReader(node, file, errors);
        r.CheckKeys(["percent", "outcomes"]);
        decimal? percent = null;
        if (r.Scalar("percent", required: true) is { } percentNode)
        {
            if (decimal.TryParse(percentNode.Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var p) && p > 0 && p < 100 && decimal.Round(p, 2) == p)
            {
                percent = p;
            }
            else
            {
                errors.Add(WorkspaceYaml.At(file, percentNode, $"holdout percent '{percentNode.Value}' must be a number above 0 and below 100, in steps of 0.01 (such as 10 or 2.5)"));
            }
        }
        var known = settings.Outcomes.Select(o => o.Name).ToList();
        List<string> outcomes;
        if (r.Any("outcomes") is { } outcomesNode)
        {
            outcomes = [];
            foreach (var scalar in Scalars(outcomesNode, file, errors, "outcomes"))
            {
                var name = scalar.Value ?? "";
                if (known.Contains(name))
                {
                    outcomes.Add(name);
                }
                else
                {
                    errors.Add(WorkspaceYaml.At(file, scalar, $"unknown outcome '{name}'{(known.Count == 0 ? $" ({DeliverySettings.FileName} declares no outcomes)" : Hint(name, known))}"));
                }
            }
        }
        else
        {
            outcomes = known;
            if (known.Count == 0)
            {
                errors.Add(WorkspaceYaml.At(file, node, $"a holdout is measured on outcomes, and {DeliverySettings.FileName} declares none: add 'outcomes:' there (such as purchase: {{ source: events, filter: {{ type: order_completed }}, window_days: 14 }})"));
            }
        }
        return errors.Count > before || percent is null ? null : new HoldoutSettings(percent.Value, outcomes);
    }

    /// <summary>The persisted name of a mode.</summary>
    public static string ModeName(SyncMode mode) => mode switch
    {
        SyncMode.Mirror => "mirror",
        SyncMode.AddOnly => "add_only",
        _ => "upsert",
    };

    private static string? CheckSource(YamlScalarNode node, Workspace workspace, string file, List<WorkspaceError> errors, string[] columns)
    {
        var name = node.Value ?? "";
        var source = workspace.Sources.FirstOrDefault(s => s.Name == name);
        if (source is null)
        {
            errors.Add(WorkspaceYaml.At(file, node, $"unknown source '{name}'{Hint(name, workspace.Sources.Select(s => s.Name))}"));
            return null;
        }
        var missing = columns.Where(c => source.Schema.Find(c) is null).ToList();
        if (missing.Count > 0)
        {
            errors.Add(WorkspaceYaml.At(file, node, $"source '{name}' lacks the column{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing)} ({source.File})"));
            return null;
        }
        return name;
    }

    private static string? CheckColumn(YamlScalarNode node, Workspace workspace, string file, List<WorkspaceError> errors)
    {
        var name = node.Value ?? "";
        var known = workspace.ProfileColumns.Select(c => c.Name).Prepend("profile_id").ToList();
        if (known.Contains(name))
        {
            return name;
        }
        errors.Add(WorkspaceYaml.At(file, node, $"unknown profile column '{name}'{Hint(name, known)}"));
        return null;
    }

    private static string? CheckVariable(YamlScalarNode node, string file, List<WorkspaceError> errors)
    {
        var value = node.Value ?? "";
        if (VariableName().IsMatch(value))
        {
            return value;
        }
        // Never echo what was written: it may be the secret itself.
        errors.Add(WorkspaceYaml.At(file, node, "credentials name environment variables (such as META_ACCESS_TOKEN), never the secret itself; this value is not a variable name"));
        return null;
    }

    private static List<YamlScalarNode> Scalars(YamlNode node, string file, List<WorkspaceError> errors, string key)
    {
        switch (node)
        {
            case YamlScalarNode scalar:
                return [scalar];
            case YamlSequenceNode sequence:
                var result = new List<YamlScalarNode>();
                foreach (var item in sequence.Children)
                {
                    if (item is YamlScalarNode s)
                    {
                        result.Add(s);
                    }
                    else
                    {
                        errors.Add(WorkspaceYaml.At(file, item, $"'{key}' lists names, such as [a, b]"));
                    }
                }
                return result;
            default:
                errors.Add(WorkspaceYaml.At(file, node, $"'{key}' lists names, such as [a, b]"));
                return [];
        }
    }

    private static List<string> Names(YamlNode node, string file, List<WorkspaceError> errors, string key)
        => [.. Scalars(node, file, errors, key).Select(s => s.Value ?? "")];

    private static int? Int(YamlScalarNode node, string file, List<WorkspaceError> errors, int min, int max, string why)
    {
        if (int.TryParse(node.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max)
        {
            return value;
        }
        errors.Add(WorkspaceYaml.At(file, node, $"'{node.Value}' is not a whole number from {min:N0} to {max:N0}{why}"));
        return null;
    }

    private static TimeOnly? Time(YamlScalarNode node, string file, List<WorkspaceError> errors)
    {
        if (TimeOnly.TryParseExact(node.Value, "HH:mm", CultureInfo.InvariantCulture, DateTimeStyles.None, out var time))
        {
            return time;
        }
        errors.Add(WorkspaceYaml.At(file, node, $"'{node.Value}' is not a time of day such as 21:00"));
        return null;
    }

    private static string Hint(string? typed, IEnumerable<string> known)
    {
        var list = known.ToList();
        return Suggestions.Nearest(typed ?? "", list) is { } nearest ? $" (did you mean '{nearest}'?)" : $" (known: {Known(list)})";
    }

    private static string Known(IEnumerable<string> names) => string.Join(", ", names);

    [GeneratedRegex("^[A-Z_][A-Z0-9_]*$")]
    private static partial Regex VariableName();

    [GeneratedRegex("^[a-z][a-z0-9_]*$")]
    private static partial Regex OutcomeName();
}
