using System.Globalization;
using System.Text;
using Apache.Arrow;
using Engine.Profiles;
using Engine.Storage;
using Engine.Workspaces;

namespace Engine.Segments;

/// <summary>
/// Checks a parsed condition's names and types against a profile table and compiles it into kernels
/// (<see cref="CompiledCondition"/>). Types follow DuckDB: <c>/</c> is DOUBLE division; a literal with a decimal
/// point is an exact DECIMAL, so <c>3 * 0.1 = 0.3</c> holds; a string literal compared with a number, date or time is
/// read as one; DATE - DATE is days (BIGINT); a date or time plus or minus an INTERVAL is a TIMESTAMP. Mixing types
/// SQL would reject, or would only reject when running (<c>ltv &gt; 'gold'</c>), is an error here, before any row is read.
/// </summary>
public sealed class ConditionCompiler
{
    private static readonly string[] Functions = ["in_segment", "now", "current_timestamp", "current_date", "abs", "lower", "upper", "length", "coalesce"];
    private const long MicrosPerDay = 86_400_000_000;

    private readonly ProfileTable _table;
    private readonly DateTimeOffset _asOf;
    private readonly Func<string, bool> _segmentExists;
    private readonly Dictionary<string, int> _dependencies = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ProfileColumn> _columnsIgnoringCase;

    /// <param name="table">The profile table the condition is evaluated over (its columns and string dictionaries).</param>
    /// <param name="asOf">The run's as-of time: <c>now()</c>, <c>current_timestamp</c>, <c>current_date</c>.</param>
    /// <param name="segmentExists">Whether <c>in_segment</c> may name a segment.</param>
    public ConditionCompiler(ProfileTable table, DateTimeOffset asOf, Func<string, bool>? segmentExists = null)
    {
        ArgumentNullException.ThrowIfNull(table);
        _table = table;
        _asOf = asOf.ToUniversalTime();
        _segmentExists = segmentExists ?? (_ => false);
        _columnsIgnoringCase = new Dictionary<string, ProfileColumn>(StringComparer.OrdinalIgnoreCase);
        foreach (var column in table.Columns)
        {
            _columnsIgnoringCase.TryAdd(column.Name, column);
        }
    }

    /// <summary>Parses and compiles <paramref name="condition"/>; throws <see cref="ConditionException"/> at the first problem.</summary>
    public CompiledCondition Compile(string condition)
    {
        _dependencies.Clear();
        var root = Predicate(ConditionParser.Parse(condition), "the condition");
        var slots = 0;
        Number(root, ref slots);
        return new CompiledCondition(root, slots, new Dictionary<string, int>(_dependencies, StringComparer.Ordinal));
    }

    private static void Number(Node node, ref int slots)
    {
        node.Slot = slots++;
        foreach (var child in node.Children)
        {
            Number(child, ref slots);
        }
    }

    private PredicateNode Predicate(ConditionSyntax syntax, string role)
    {
        var node = Bind(syntax);
        return node switch
        {
            PredicateNode predicate => predicate,
            NullNode => new BooleanConstantNode(node.Position, null),
            _ => throw new ConditionException(syntax.Position, $"{role} must be true or false, but this is {Describe(node)}"),
        };
    }

    private static string Describe(Node node) => node.Type switch
    {
        SqlType.Decimal => "a DECIMAL",
        SqlType.Interval => "an INTERVAL",
        var type => $"a{("AEIOU".Contains(SqlTypes.Name(type)[0], StringComparison.Ordinal) ? "n" : "")} {SqlTypes.Name(type)}",
    };

    private Node Bind(ConditionSyntax syntax) => Fold(BindCore(syntax));

    /// <summary>
    /// Evaluates an expression of constants once, here, instead of once per row (<c>now() - INTERVAL 1 YEAR</c>,
    /// <c>365 * 40</c>, <c>coalesce(7, x)</c> is not folded but <c>abs(-7)</c> is): one row through the same kernels.
    /// An overflow is then an error when compiling, as DuckDB raises it when running.
    /// </summary>
    private static Node Fold(Node node)
    {
        if (IsConstant(node) || !node.Children.Any() || !node.Children.All(IsConstant))
        {
            return node;
        }
        var slots = 0;
        Number(node, ref slots);
        var chunk = new Chunk(slots, new Dictionary<string, ulong[]>());
        chunk.MoveTo(0, 1);
        try
        {
            return FoldInto(node, chunk);
        }
        finally
        {
            chunk.Release();
        }
    }

    private static Node FoldInto(Node node, Chunk chunk)
    {
        switch (node)
        {
            case LongNode value:
                var longs = value.Eval(chunk);
                return (longs.Valid[0] & 1) != 0
                    ? new LongConstantNode(value.Type, node.Position, longs.Values[0]) { Scale = value.Scale }
                    : new NullNode(node.Position);
            case DoubleNode value:
                var doubles = value.Eval(chunk);
                return (doubles.Valid[0] & 1) != 0 ? new DoubleConstantNode(node.Position, doubles.Values[0]) : new NullNode(node.Position);
            case StringNode value:
                var codes = value.Eval(chunk);
                return (codes.Valid[0] & 1) != 0 ? new StringConstantNode(node.Position, value.Dictionary[codes.Codes[0]].ToArray()) : new NullNode(node.Position);
            case PredicateNode value:
                var bits = value.Eval(chunk);
                return new BooleanConstantNode(node.Position, (bits.True[0] & 1) != 0 ? true : (bits.False[0] & 1) != 0 ? false : null);
            default:
                return node;
        }
    }

    private static bool IsConstant(Node node) =>
        node is LongConstantNode or DoubleConstantNode or StringConstantNode or BooleanConstantNode or NullNode or IntervalNode;

    private Node BindCore(ConditionSyntax syntax) => syntax switch
    {
        ColumnSyntax column => Column(column),
        LiteralSyntax literal => Literal(literal),
        UnarySyntax { Operator: "NOT" } not => new NotNode(not.Position, Predicate(not.Operand, "the operand of NOT")),
        UnarySyntax unary => Negate(unary),
        BinarySyntax { Operator: "AND" or "OR" } logic => Logic(logic),
        BinarySyntax { Operator: "=" or "<>" or "<" or "<=" or ">" or ">=" } comparison =>
            Compare(comparison.Position, ComparisonOf(comparison.Operator), Bind(comparison.Left), Bind(comparison.Right)),
        BinarySyntax arithmetic => Arithmetic(arithmetic),
        IsNullSyntax isNull => IsNull(isNull),
        BetweenSyntax between => Between(between),
        InSyntax list => In(list),
        LikeSyntax like => Like(like),
        CallSyntax call => Call(call),
        _ => throw new ConditionException(syntax.Position, $"unsupported expression {syntax.GetType().Name}"),
    };

    // ---- names and constants ------------------------------------------------------------------------------------

    private Node Column(ColumnSyntax syntax)
    {
        var column = syntax.Quoted ? _table.Find(syntax.Name) : _columnsIgnoringCase.GetValueOrDefault(syntax.Name);
        if (column is null)
        {
            if (syntax.Name.Equals(ProfileTable.ProfileIdColumn, StringComparison.OrdinalIgnoreCase))
            {
                return new LongColumnNode(SqlType.BigInt, syntax.Position, _table.ProfileIds);
            }
            var names = _table.Columns.Select(c => c.Name).Append(ProfileTable.ProfileIdColumn);
            var hint = Suggestions.Nearest(syntax.Name, names);
            throw new ConditionException(syntax.Position, $"unknown column '{syntax.Name}'{(hint is null ? "" : $" (did you mean '{hint}'?)")}");
        }
        return column.Type switch
        {
            ColumnType.Int64 => new LongColumnNode(SqlType.BigInt, syntax.Position, column.Values),
            ColumnType.Timestamp => new LongColumnNode(SqlType.Timestamp, syntax.Position, column.Values),
            ColumnType.Date => new LongColumnNode(SqlType.Date, syntax.Position, column.Values),
            ColumnType.Double => new DoubleColumnNode(syntax.Position, (DoubleArray)column.Values),
            ColumnType.Boolean => new BooleanColumnNode(syntax.Position, (BooleanArray)column.Values),
            ColumnType.String => new StringColumnNode(syntax.Position, (DictionaryArray)column.Values),
            _ => throw new ConditionException(syntax.Position, $"column '{column.Name}' has a type conditions cannot use"),
        };
    }

    private static Node Literal(LiteralSyntax literal)
    {
        var at = literal.Position;
        switch (literal.Kind)
        {
            case LiteralKind.Null:
                return new NullNode(at);
            case LiteralKind.Boolean:
                return new BooleanConstantNode(at, literal.Text == "TRUE");
            case LiteralKind.Integer:
                if (!long.TryParse(literal.Text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var integer))
                {
                    throw new ConditionException(at, $"{literal.Text} is out of BIGINT's range");
                }
                return new LongConstantNode(SqlType.BigInt, at, integer);
            case LiteralKind.Decimal:
                if (!ConditionParser.TryParseDecimal(literal.Text, out var unscaled, out var scale))
                {
                    throw new ConditionException(at, $"{literal.Text} has more digits than an exact number holds here (18)");
                }
                return new LongConstantNode(SqlType.Decimal, at, unscaled) { Scale = scale };
            case LiteralKind.Double:
                return new DoubleConstantNode(at, double.Parse(literal.Text, NumberStyles.Float, CultureInfo.InvariantCulture));
            case LiteralKind.String:
                return new StringConstantNode(at, Encoding.UTF8.GetBytes(literal.Text));
            case LiteralKind.Date:
                return new LongConstantNode(SqlType.Date, at, ParseDate(literal.Text, at));
            case LiteralKind.Timestamp:
                return new LongConstantNode(SqlType.Timestamp, at, ParseTimestamp(literal.Text, at));
            case LiteralKind.Interval:
                return ParseInterval(literal.Text, at);
            default:
                throw new ConditionException(at, $"unsupported literal {literal.Kind}");
        }
    }

    private static readonly string[] TimestampFormats =
    [
        "yyyy-MM-dd", "yyyy-MM-dd HH:mm", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd HH:mm:ss.FFFFFFF",
        "yyyy-MM-ddTHH:mm", "yyyy-MM-ddTHH:mm:ss", "yyyy-MM-ddTHH:mm:ss.FFFFFFF",
    ];

    internal static long ParseTimestamp(string text, int position)
    {
        var trimmed = text.Trim();
        if (trimmed.EndsWith('Z') || trimmed.EndsWith("+00", StringComparison.Ordinal) || trimmed.EndsWith("+00:00", StringComparison.Ordinal))
        {
            trimmed = trimmed.TrimEnd('Z');
            trimmed = trimmed.EndsWith("+00:00", StringComparison.Ordinal) ? trimmed[..^6] : trimmed.EndsWith("+00", StringComparison.Ordinal) ? trimmed[..^3] : trimmed;
        }
        if (!DateTime.TryParseExact(trimmed, TimestampFormats, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var value))
        {
            throw new ConditionException(position, $"'{text}' is not a timestamp (expected 'YYYY-MM-DD', 'YYYY-MM-DD HH:MM:SS' or with fractions of a second, in UTC)");
        }
        return (value.Ticks - DateTime.UnixEpoch.Ticks) / 10;
    }

    internal static long ParseDate(string text, int position)
    {
        if (!DateOnly.TryParseExact(text.Trim(), "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date))
        {
            throw new ConditionException(position, $"'{text}' is not a date (expected 'YYYY-MM-DD')");
        }
        return date.DayNumber - DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber;
    }

    private static IntervalNode ParseInterval(string text, int position)
    {
        var parts = text.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0 || parts.Length % 2 != 0)
        {
            throw new ConditionException(position, $"'{text}' is not an interval (expected a number and a unit, such as '7 days' or '2 hours 30 minutes')");
        }
        long months = 0, days = 0, micros = 0;
        for (var i = 0; i < parts.Length; i += 2)
        {
            var unit = parts[i + 1].ToLowerInvariant();
            if (!long.TryParse(parts[i], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var count) || !ConditionParser.IntervalUnits.Contains(unit))
            {
                throw new ConditionException(position, $"'{text}' is not an interval (expected a whole number and a unit: microseconds … years)");
            }
            checked
            {
                switch (unit.TrimEnd('s'))
                {
                    case "year": months += count * 12; break;
                    case "month": months += count; break;
                    case "week": days += count * 7; break;
                    case "day": days += count; break;
                    case "hour": micros += count * 3_600_000_000; break;
                    case "minute": micros += count * 60_000_000; break;
                    case "second": micros += count * 1_000_000; break;
                    case "millisecond": micros += count * 1_000; break;
                    default: micros += count; break;
                }
            }
        }
        if (months is > int.MaxValue or < int.MinValue || days is > int.MaxValue or < int.MinValue)
        {
            throw new ConditionException(position, $"interval '{text}' is too large");
        }
        return new IntervalNode(position, (int)months, (int)days, micros);
    }

    // ---- conversions ----------------------------------------------------------------------------------------------

    private static LongNode AsExact(Node node, int scale, string what)
    {
        var value = (LongNode)node;
        if (value.Scale == scale)
        {
            return value;
        }
        var factor = Pow10(scale - value.Scale);
        if (value is LongConstantNode constant)
        {
            var high = Math.BigMul(constant.Value, factor, out var scaled);
            if (high != (scaled >> 63))
            {
                throw new ConditionException(node.Position, $"DECIMAL overflow in {what}");
            }
            return new LongConstantNode(SqlType.Decimal, node.Position, scaled) { Scale = scale };
        }
        return new LongScaleNode(SqlType.Decimal, node.Position, value, factor, what) { Scale = scale };
    }

    private static long Pow10(int digits)
    {
        long result = 1;
        for (var i = 0; i < digits; i++)
        {
            result *= 10;
        }
        return result;
    }

    private static DoubleNode AsDouble(Node node) => node switch
    {
        DoubleNode value => value,
        LongConstantNode constant => new DoubleConstantNode(node.Position, constant.Scale == 0 ? constant.Value : constant.Value / Math.Pow(10, constant.Scale)),
        LongNode value => new DoubleFromLongNode(node.Position, value, value.Scale),
        _ => throw new InvalidOperationException($"not numeric: {node.Type}"),
    };

    private static LongNode AsMicros(Node node) => node.Type == SqlType.Date
        ? node is LongConstantNode constant
            ? new LongConstantNode(SqlType.Timestamp, node.Position, constant.Value * MicrosPerDay)
            : new LongScaleNode(SqlType.Timestamp, node.Position, (LongNode)node, MicrosPerDay, "a date as a timestamp")
        : (LongNode)node;

    /// <summary>A string literal met by a number, date or time is read as one (DuckDB casts it the same way).</summary>
    private static Node Coerce(Node node, SqlType to)
    {
        if (node is not StringConstantNode literal || to is SqlType.Varchar or SqlType.Null)
        {
            return node;
        }
        var text = Encoding.UTF8.GetString(literal.Value);
        switch (to)
        {
            case SqlType.BigInt or SqlType.Decimal or SqlType.Double:
                var trimmed = text.Trim();
                if (long.TryParse(trimmed, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var integer))
                {
                    return new LongConstantNode(SqlType.BigInt, node.Position, integer);
                }
                if (ConditionParser.TryParseDecimal(trimmed, out var unscaled, out var scale) && trimmed.Length > 0 && trimmed.All(c => char.IsAsciiDigit(c) || c is '.' or '-'))
                {
                    return new LongConstantNode(SqlType.Decimal, node.Position, unscaled) { Scale = scale };
                }
                if (double.TryParse(trimmed, NumberStyles.Float, CultureInfo.InvariantCulture, out var real))
                {
                    return new DoubleConstantNode(node.Position, real);
                }
                throw new ConditionException(node.Position, $"'{text}' is not a number, and is compared with a {SqlTypes.Name(to)}");
            case SqlType.Date:
                return new LongConstantNode(SqlType.Date, node.Position, ParseDate(text, node.Position));
            case SqlType.Timestamp:
                return new LongConstantNode(SqlType.Timestamp, node.Position, ParseTimestamp(text, node.Position));
            case SqlType.Boolean:
                return text.Trim().ToLowerInvariant() switch
                {
                    "true" or "t" => new BooleanConstantNode(node.Position, true),
                    "false" or "f" => new BooleanConstantNode(node.Position, false),
                    _ => throw new ConditionException(node.Position, $"'{text}' is not a boolean"),
                };
            default:
                return node;
        }
    }

    // ---- operators ------------------------------------------------------------------------------------------------

    private static ComparisonOperator ComparisonOf(string op) => op switch
    {
        "=" => ComparisonOperator.Equal,
        "<>" => ComparisonOperator.NotEqual,
        "<" => ComparisonOperator.Less,
        "<=" => ComparisonOperator.LessOrEqual,
        ">" => ComparisonOperator.Greater,
        _ => ComparisonOperator.GreaterOrEqual,
    };

    private static ComparisonOperator Flip(ComparisonOperator op) => op switch
    {
        ComparisonOperator.Less => ComparisonOperator.Greater,
        ComparisonOperator.LessOrEqual => ComparisonOperator.GreaterOrEqual,
        ComparisonOperator.Greater => ComparisonOperator.Less,
        ComparisonOperator.GreaterOrEqual => ComparisonOperator.LessOrEqual,
        var same => same,
    };

    private static string Symbol(ComparisonOperator op) => op switch
    {
        ComparisonOperator.Equal => "=",
        ComparisonOperator.NotEqual => "<>",
        ComparisonOperator.Less => "<",
        ComparisonOperator.LessOrEqual => "<=",
        ComparisonOperator.Greater => ">",
        _ => ">=",
    };

    private static PredicateNode Compare(int position, ComparisonOperator op, Node left, Node right)
    {
        left = Coerce(left, right.Type);
        right = Coerce(right, left.Type);
        if (left is NullNode || right is NullNode)
        {
            Check(left, right, op, position);
            return new BooleanConstantNode(position, null);
        }
        if (left is IntervalNode || right is IntervalNode)
        {
            throw new ConditionException(position, "an INTERVAL can only be added to or subtracted from a date or time");
        }
        // Constants on the right, where the kernels have a fast path for them.
        if (left is LongConstantNode or StringConstantNode && right is not (LongConstantNode or StringConstantNode))
        {
            (left, right) = (right, left);
            op = Flip(op);
        }
        switch (left.Type, right.Type)
        {
            case (SqlType.Boolean, SqlType.Boolean):
                return new CompareBooleansNode(position, op, (PredicateNode)left, (PredicateNode)right);
            case (SqlType.Varchar, SqlType.Varchar):
                return CompareStrings(position, op, (StringNode)left, (StringNode)right);
            case var (a, b) when SqlTypes.IsNumeric(a) && SqlTypes.IsNumeric(b):
                if (a == SqlType.Double || b == SqlType.Double)
                {
                    return new CompareDoubleNode(position, op, AsDouble(left), AsDouble(right));
                }
                var scale = Math.Max(left.Scale, right.Scale);
                var what = $"the comparison {Symbol(op)}";
                return new CompareLongNode(position, op, AsExact(left, scale, what), AsExact(right, scale, what));
            case (SqlType.Date, SqlType.Date):
                return new CompareLongNode(position, op, (LongNode)left, (LongNode)right);
            case var (a, b) when SqlTypes.IsTemporal(a) && SqlTypes.IsTemporal(b):
                return new CompareLongNode(position, op, AsMicros(left), AsMicros(right));
            default:
                throw Mismatch(position, $"compare", left, right);
        }
    }

    private static void Check(Node left, Node right, ComparisonOperator op, int position)
    {
        if (left is IntervalNode || right is IntervalNode)
        {
            throw new ConditionException(position, $"an INTERVAL cannot be compared with {Symbol(op)}");
        }
    }

    private static ConditionException Mismatch(int position, string verb, Node left, Node right)
        => new(position, $"cannot {verb} {Describe(left)} with {Describe(right)}");

    private static PredicateNode CompareStrings(int position, ComparisonOperator op, StringNode left, StringNode right)
    {
        if (right is StringConstantNode constant)
        {
            var dictionary = left.Dictionary;
            var isTrue = new bool[dictionary.TableSize];
            var isFalse = new bool[dictionary.TableSize];
            for (var code = 0; code < dictionary.Count; code++)
            {
                var holds = Comparisons.Holds(op, dictionary[code].SequenceCompareTo(constant.Value));
                isTrue[code] = holds;
                isFalse[code] = !holds;
            }
            return new StringTableNode(position, left, isTrue, isFalse);
        }
        var (leftRank, rightRank) = Ranks(left.Dictionary, right.Dictionary);
        return new CompareStringsNode(position, op, left, right, leftRank, rightRank);
    }

    /// <summary>Ranks of two dictionaries' entries in their union sorted by UTF-8 bytes (equal strings, equal ranks).</summary>
    private static (int[] Left, int[] Right) Ranks(Utf8Dictionary left, Utf8Dictionary right)
    {
        var all = new (byte[] Value, int Side, int Code)[left.Count + right.Count];
        for (var i = 0; i < left.Count; i++)
        {
            all[i] = (left[i].ToArray(), 0, i);
        }
        for (var i = 0; i < right.Count; i++)
        {
            all[left.Count + i] = (right[i].ToArray(), 1, i);
        }
        System.Array.Sort(all, (x, y) => x.Value.AsSpan().SequenceCompareTo(y.Value));
        var ranks = new[] { new int[left.TableSize], new int[right.TableSize] };
        var rank = -1;
        for (var i = 0; i < all.Length; i++)
        {
            if (i == 0 || !all[i].Value.AsSpan().SequenceEqual(all[i - 1].Value))
            {
                rank++;
            }
            ranks[all[i].Side][all[i].Code] = rank;
        }
        return (ranks[0], ranks[1]);
    }

    private AndOrNode Logic(BinarySyntax syntax)
    {
        // a AND b AND c is one node over three inputs, not a chain of two.
        var inputs = new List<PredicateNode>();
        void Flatten(ConditionSyntax node)
        {
            if (node is BinarySyntax binary && binary.Operator == syntax.Operator)
            {
                Flatten(binary.Left);
                Flatten(binary.Right);
            }
            else
            {
                inputs.Add(Predicate(node, $"an operand of {syntax.Operator}"));
            }
        }
        Flatten(syntax);
        return new AndOrNode(syntax.Position, syntax.Operator == "AND", [.. inputs]);
    }

    private Node Negate(UnarySyntax syntax)
    {
        var operand = Bind(syntax.Operand);
        return (syntax.Operator, operand) switch
        {
            (_, NullNode) => operand,
            ("+", _) when SqlTypes.IsNumeric(operand.Type) => operand,
            ("-", LongConstantNode constant) when constant.Value != long.MinValue && constant.Type is SqlType.BigInt or SqlType.Decimal
                => new LongConstantNode(constant.Type, syntax.Position, -constant.Value) { Scale = constant.Scale },
            ("-", LongNode value) when value.Type is SqlType.BigInt or SqlType.Decimal => new LongNegateNode(syntax.Position, value, absolute: false) { Scale = value.Scale },
            ("-", DoubleNode value) => new DoubleNegateNode(syntax.Position, value, absolute: false),
            ("-", IntervalNode interval) => interval.Negate(),
            _ => throw new ConditionException(syntax.Position, $"unary {syntax.Operator} needs a number, not {Describe(operand)}"),
        };
    }

    private Node Arithmetic(BinarySyntax syntax)
    {
        var op = syntax.Operator switch
        {
            "+" => ArithmeticOperator.Add,
            "-" => ArithmeticOperator.Subtract,
            "*" => ArithmeticOperator.Multiply,
            "/" => ArithmeticOperator.Divide,
            "//" => ArithmeticOperator.IntegerDivide,
            _ => ArithmeticOperator.Modulo,
        };
        var left = Bind(syntax.Left);
        var right = Bind(syntax.Right);
        left = Coerce(left, right.Type == SqlType.Interval ? SqlType.Timestamp : right.Type);
        right = Coerce(right, left.Type == SqlType.Interval ? SqlType.Timestamp : left.Type);
        var at = syntax.Position;
        var what = $"{syntax.Operator}";
        if (left is NullNode || right is NullNode)
        {
            return new NullNode(at);
        }
        // Dates and times.
        if (SqlTypes.IsTemporal(left.Type) || SqlTypes.IsTemporal(right.Type) || left is IntervalNode || right is IntervalNode)
        {
            return (op, left, right) switch
            {
                (ArithmeticOperator.Add or ArithmeticOperator.Subtract, LongNode time, IntervalNode interval) when SqlTypes.IsTemporal(time.Type)
                    => new AddIntervalNode(at, AsMicros(time), op == ArithmeticOperator.Add ? interval : interval.Negate()),
                (ArithmeticOperator.Add, IntervalNode interval, LongNode time) when SqlTypes.IsTemporal(time.Type)
                    => new AddIntervalNode(at, AsMicros(time), interval),
                (ArithmeticOperator.Add or ArithmeticOperator.Subtract, LongNode { Type: SqlType.Date } date, LongNode { Type: SqlType.BigInt } count)
                    => new LongArithmeticNode(SqlType.Date, at, op, date, count, $"date {what} days"),
                (ArithmeticOperator.Add, LongNode { Type: SqlType.BigInt } count, LongNode { Type: SqlType.Date } date)
                    => new LongArithmeticNode(SqlType.Date, at, op, date, count, $"date {what} days"),
                (ArithmeticOperator.Subtract, LongNode { Type: SqlType.Date } a, LongNode { Type: SqlType.Date } b)
                    => new LongArithmeticNode(SqlType.BigInt, at, op, a, b, "date - date"),
                (ArithmeticOperator.Subtract, _, _) when SqlTypes.IsTemporal(left.Type) && SqlTypes.IsTemporal(right.Type)
                    => throw new ConditionException(at, "a time minus a time is an INTERVAL, which conditions cannot compare; compare the times themselves (ts < now() - INTERVAL 7 DAY), or subtract dates for days"),
                _ => throw Mismatch(at, $"apply {syntax.Operator} to", left, right),
            };
        }
        if (!SqlTypes.IsNumeric(left.Type) || !SqlTypes.IsNumeric(right.Type))
        {
            throw new ConditionException(at, $"{syntax.Operator} needs numbers, not {Describe(left)} and {Describe(right)}{(left.Type == SqlType.Varchar && right.Type == SqlType.Varchar ? "" : "")}");
        }
        if (op == ArithmeticOperator.Divide)
        {
            return new DoubleArithmeticNode(at, op, AsDouble(left), AsDouble(right));
        }
        if (op == ArithmeticOperator.IntegerDivide)
        {
            if (left.Type != SqlType.BigInt || right.Type != SqlType.BigInt)
            {
                throw new ConditionException(at, "// is integer division: it needs two BIGINTs; use / for other numbers");
            }
            return new LongArithmeticNode(SqlType.BigInt, at, op, (LongNode)left, (LongNode)right, "//");
        }
        if (left.Type == SqlType.Double || right.Type == SqlType.Double)
        {
            return new DoubleArithmeticNode(at, op, AsDouble(left), AsDouble(right));
        }
        var exact = left.Type == SqlType.Decimal || right.Type == SqlType.Decimal ? SqlType.Decimal : SqlType.BigInt;
        if (op == ArithmeticOperator.Multiply)
        {
            var scale = left.Scale + right.Scale;
            if (scale > 18)
            {
                throw new ConditionException(at, "the product has more than 18 digits after the point");
            }
            return new LongArithmeticNode(exact, at, op, (LongNode)left, (LongNode)right, what) { Scale = scale };
        }
        var common = Math.Max(left.Scale, right.Scale);
        return new LongArithmeticNode(exact, at, op, AsExact(left, common, what), AsExact(right, common, what), what) { Scale = common };
    }

    private PredicateNode IsNull(IsNullSyntax syntax)
    {
        var operand = Bind(syntax.Operand);
        return operand switch
        {
            NullNode => new BooleanConstantNode(syntax.Position, !syntax.Negated),
            IntervalNode => new BooleanConstantNode(syntax.Position, syntax.Negated),
            _ => new IsNullNode(syntax.Position, operand, syntax.Negated),
        };
    }

    private PredicateNode Between(BetweenSyntax syntax)
    {
        // x BETWEEN a AND b is x >= a AND x <= b, NULLs included.
        var both = new AndOrNode(syntax.Position, true,
        [
            Compare(syntax.Position, ComparisonOperator.GreaterOrEqual, Bind(syntax.Operand), Bind(syntax.Low)),
            Compare(syntax.Position, ComparisonOperator.LessOrEqual, Bind(syntax.Operand), Bind(syntax.High)),
        ]);
        return syntax.Negated ? new NotNode(syntax.Position, both) : both;
    }

    private PredicateNode In(InSyntax syntax)
    {
        var operand = Bind(syntax.Operand);
        PredicateNode result;
        if (operand is StringNode strings && syntax.Items.All(i => i is LiteralSyntax { Kind: LiteralKind.String or LiteralKind.Null }))
        {
            // One table lookup per row: TRUE on a match, NULL when there is none and the list holds a NULL, else FALSE.
            var values = syntax.Items.OfType<LiteralSyntax>().Where(i => i.Kind == LiteralKind.String).Select(i => Encoding.UTF8.GetBytes(i.Text)).ToList();
            var anyNull = syntax.Items.Any(i => i is LiteralSyntax { Kind: LiteralKind.Null });
            var dictionary = strings.Dictionary;
            var isTrue = new bool[dictionary.TableSize];
            var isFalse = new bool[dictionary.TableSize];
            for (var code = 0; code < dictionary.Count; code++)
            {
                var entry = dictionary[code];
                var match = false;
                foreach (var value in values)
                {
                    if (entry.SequenceEqual(value))
                    {
                        match = true;
                        break;
                    }
                }
                isTrue[code] = match;
                isFalse[code] = !match && !anyNull;
            }
            result = new StringTableNode(syntax.Position, strings, isTrue, isFalse);
        }
        else
        {
            // SQL defines x IN (a, b) as x = a OR x = b, three-valued logic included.
            var equalities = new PredicateNode[syntax.Items.Count];
            for (var i = 0; i < equalities.Length; i++)
            {
                equalities[i] = Compare(syntax.Items[i].Position, ComparisonOperator.Equal, i == 0 ? operand : Bind(syntax.Operand), Bind(syntax.Items[i]));
            }
            result = new AndOrNode(syntax.Position, false, equalities);
        }
        return syntax.Negated ? new NotNode(syntax.Position, result) : result;
    }

    private PredicateNode Like(LikeSyntax syntax)
    {
        var operand = Bind(syntax.Operand);
        var pattern = Bind(syntax.Pattern);
        if (operand is NullNode || pattern is NullNode)
        {
            return new BooleanConstantNode(syntax.Position, null);
        }
        if (operand is not StringNode strings)
        {
            throw new ConditionException(syntax.Operand.Position, $"LIKE needs a VARCHAR on its left, not {Describe(operand)}");
        }
        if (pattern is not StringConstantNode constant)
        {
            throw new ConditionException(syntax.Pattern.Position, "LIKE needs a constant pattern, such as '%@example.com'");
        }
        var matcher = new LikePattern(Encoding.UTF8.GetString(constant.Value), syntax.Escape, syntax.CaseInsensitive, syntax.Pattern.Position);
        var dictionary = strings.Dictionary;
        var isTrue = new bool[dictionary.TableSize];
        var isFalse = new bool[dictionary.TableSize];
        for (var code = 0; code < dictionary.Count; code++)
        {
            var match = matcher.Matches(Encoding.UTF8.GetString(dictionary[code]));
            isTrue[code] = match != syntax.Negated;
            isFalse[code] = match == syntax.Negated;
        }
        return new StringTableNode(syntax.Position, strings, isTrue, isFalse);
    }

    // ---- functions -------------------------------------------------------------------------------------------------

    private Node Call(CallSyntax call)
    {
        var at = call.Position;
        void Arity(int count)
        {
            if (call.Arguments.Count != count)
            {
                throw new ConditionException(at, $"{call.Name}() takes {count} argument{(count == 1 ? "" : "s")}, not {call.Arguments.Count}");
            }
        }
        switch (call.Name)
        {
            case "in_segment":
                Arity(1);
                if (call.Arguments[0] is not LiteralSyntax { Kind: LiteralKind.String } name)
                {
                    throw new ConditionException(call.Arguments[0].Position, "in_segment() takes a segment's name in quotes, such as in_segment('vip')");
                }
                if (!_segmentExists(name.Text))
                {
                    throw new ConditionException(name.Position, $"unknown segment '{name.Text}'");
                }
                _dependencies.TryAdd(name.Text, name.Position);
                return new InSegmentNode(at, name.Text);
            case "now" or "current_timestamp":
                Arity(0);
                return new LongConstantNode(SqlType.Timestamp, at, (_asOf.UtcTicks - DateTime.UnixEpoch.Ticks) / 10);
            case "current_date":
                Arity(0);
                return new LongConstantNode(SqlType.Date, at, (_asOf.UtcTicks - DateTime.UnixEpoch.Ticks) / TimeSpan.TicksPerDay);
            case "abs":
                Arity(1);
                var value = Bind(call.Arguments[0]);
                return value switch
                {
                    NullNode => value,
                    LongNode number when number.Type is SqlType.BigInt or SqlType.Decimal => new LongNegateNode(at, number, absolute: true) { Scale = number.Scale },
                    DoubleNode number => new DoubleNegateNode(at, number, absolute: true),
                    _ => throw new ConditionException(call.Arguments[0].Position, $"abs() needs a number, not {Describe(value)}"),
                };
            case "lower" or "upper":
                Arity(1);
                return CaseMap(call, Bind(call.Arguments[0]));
            case "length":
                Arity(1);
                var text = Bind(call.Arguments[0]);
                if (text is NullNode)
                {
                    return text;
                }
                if (text is not StringNode input)
                {
                    throw new ConditionException(call.Arguments[0].Position, $"length() needs a VARCHAR, not {Describe(text)}");
                }
                var lengths = new long[input.Dictionary.TableSize];
                for (var code = 0; code < input.Dictionary.Count; code++)
                {
                    lengths[code] = Encoding.UTF8.GetString(input.Dictionary[code]).EnumerateRunes().Count();
                }
                return new StringToLongNode(at, input, lengths);
            case "coalesce":
                if (call.Arguments.Count == 0)
                {
                    throw new ConditionException(at, "coalesce() needs at least one argument");
                }
                return Coalesce(at, [.. call.Arguments.Select(Bind)]);
            default:
                var hint = Suggestions.Nearest(call.Name, Functions);
                throw new ConditionException(at, $"unknown function '{call.Name}'{(hint is null ? $" (known: {string.Join(", ", Functions)})" : $" (did you mean '{hint}'?)")}");
        }
    }

    private static Node CaseMap(CallSyntax call, Node argument)
    {
        if (argument is NullNode)
        {
            return argument;
        }
        if (argument is not StringNode input)
        {
            throw new ConditionException(call.Arguments[0].Position, $"{call.Name}() needs a VARCHAR, not {Describe(argument)}");
        }
        var upper = call.Name == "upper";
        var map = new int[input.Dictionary.TableSize];
        var entries = new List<byte[]>();
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var code = 0; code < input.Dictionary.Count; code++)
        {
            var text = Encoding.UTF8.GetString(input.Dictionary[code]);
            var mapped = upper ? text.ToUpperInvariant() : text.ToLowerInvariant();
            if (!seen.TryGetValue(mapped, out var target))
            {
                target = entries.Count;
                seen.Add(mapped, target);
                entries.Add(Encoding.UTF8.GetBytes(mapped));
            }
            map[code] = target;
        }
        return new StringMapNode(call.Position, input, map, [.. entries]);
    }

    private static Node Coalesce(int at, Node[] arguments)
    {
        var present = arguments.Where(a => a is not NullNode).ToArray();
        if (present.Length == 0)
        {
            return new NullNode(at);
        }
        var first = present[0];
        if (present.All(a => a.Type == SqlType.Boolean))
        {
            return new BooleanCoalesceNode(at, [.. present.Cast<PredicateNode>()]);
        }
        if (present.All(a => a.Type == SqlType.Varchar))
        {
            var inputs = present.Cast<StringNode>().ToArray();
            var union = new List<byte[]>();
            var seen = new Dictionary<string, int>(StringComparer.Ordinal);
            var maps = new int[inputs.Length][];
            for (var i = 0; i < inputs.Length; i++)
            {
                var dictionary = inputs[i].Dictionary;
                maps[i] = new int[dictionary.TableSize];
                for (var code = 0; code < dictionary.Count; code++)
                {
                    var key = Convert.ToBase64String(dictionary[code]);
                    if (!seen.TryGetValue(key, out var target))
                    {
                        target = union.Count;
                        seen.Add(key, target);
                        union.Add(dictionary[code].ToArray());
                    }
                    maps[i][code] = target;
                }
            }
            return new StringCoalesceNode(at, inputs, maps, [.. union]);
        }
        if (present.All(a => SqlTypes.IsNumeric(a.Type) || a is StringConstantNode))
        {
            present = [.. present.Select(a => Coerce(a, SqlType.Double))];
            if (present.Any(a => a.Type == SqlType.Double))
            {
                return new DoubleCoalesceNode(at, [.. present.Select(AsDouble)]);
            }
            var scale = present.Max(a => a.Scale);
            var type = present.Any(a => a.Type == SqlType.Decimal) ? SqlType.Decimal : SqlType.BigInt;
            return new LongCoalesceNode(type, at, [.. present.Select(a => AsExact(a, scale, "coalesce"))]) { Scale = scale };
        }
        if (present.All(a => SqlTypes.IsTemporal(a.Type) || a is StringConstantNode) && present.Any(a => SqlTypes.IsTemporal(a.Type)))
        {
            var allDates = present.All(a => a.Type == SqlType.Date || a is StringConstantNode) && present.Any(a => a.Type == SqlType.Date) && !present.Any(a => a.Type == SqlType.Timestamp);
            var target = allDates ? SqlType.Date : SqlType.Timestamp;
            present = [.. present.Select(a => Coerce(a, target))];
            return allDates
                ? new LongCoalesceNode(SqlType.Date, at, [.. present.Cast<LongNode>()])
                : new LongCoalesceNode(SqlType.Timestamp, at, [.. present.Select(AsMicros)]);
        }
        throw new ConditionException(at, $"coalesce() needs arguments of one kind, not {string.Join(" and ", present.Select(Describe).Distinct())}");
    }
}

/// <summary>A compiled condition: evaluate it over the profile table it was compiled for.</summary>
public sealed class CompiledCondition
{
    private readonly PredicateNode _root;
    private readonly int _slots;

    internal CompiledCondition(PredicateNode root, int slots, IReadOnlyDictionary<string, int> dependencies)
    {
        _root = root;
        _slots = slots;
        Dependencies = dependencies;
    }

    /// <summary>
    /// The segments the condition names with <c>in_segment</c> (they are evaluated first), each with the offset in
    /// the condition where it is first named.
    /// </summary>
    public IReadOnlyDictionary<string, int> Dependencies { get; }

    /// <summary>
    /// The rows of <paramref name="table"/> for which the condition is TRUE (not FALSE, not NULL), one bit per row.
    /// <paramref name="segments"/> holds the members of every segment in <see cref="Dependencies"/>.
    /// </summary>
    public ulong[] Evaluate(ProfileTable table, IReadOnlyDictionary<string, ulong[]>? segments = null, int parallelism = 0)
    {
        ArgumentNullException.ThrowIfNull(table);
        segments ??= new Dictionary<string, ulong[]>();
        var rows = table.Count;
        var members = new ulong[(rows + 63) / 64];
        var chunks = (rows + Chunk.Rows - 1) / Chunk.Rows;
        var options = new ParallelOptions { MaxDegreeOfParallelism = parallelism > 0 ? parallelism : Environment.ProcessorCount };
        try
        {
            Parallel.For(0, chunks, options, () => new Chunk(_slots, segments), (c, _, chunk) =>
            {
                var start = c * Chunk.Rows;
                chunk.MoveTo(start, Math.Min(Chunk.Rows, rows - start));
                var result = _root.Eval(chunk);
                result.True.AsSpan(0, chunk.Words).CopyTo(members.AsSpan(start >> 6));
                return chunk;
            }, chunk => chunk.Release());
        }
        catch (AggregateException e) when (e.InnerExceptions.OfType<ConditionException>().FirstOrDefault() is { } first)
        {
            throw first;
        }
        // Bits past the last row are padding.
        if ((rows & 63) != 0)
        {
            members[^1] &= (1UL << (rows & 63)) - 1;
        }
        return members;
    }
}
