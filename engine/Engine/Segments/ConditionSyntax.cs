namespace Engine.Segments;

/// <summary>
/// A segment condition as written: the syntax tree the parser builds, before names and types are checked. Each node
/// keeps the offset in the condition text where it starts, so later errors can point at it.
/// </summary>
public abstract record ConditionSyntax(int Position);

/// <summary>A column of the profile table, by name (unquoted names are matched case-insensitively, as in SQL).</summary>
public sealed record ColumnSyntax(int Position, string Name, bool Quoted) : ConditionSyntax(Position);

/// <summary>What kind of constant a <see cref="LiteralSyntax"/> is.</summary>
public enum LiteralKind
{
    Null,
    Boolean,
    Integer,
    /// <summary>A number with a decimal point: exact, as SQL's DECIMAL (its text is kept).</summary>
    Decimal,
    /// <summary>A number with an exponent: DOUBLE.</summary>
    Double,
    String,
    /// <summary><c>DATE '2024-01-31'</c>.</summary>
    Date,
    /// <summary><c>TIMESTAMP '2024-01-31 12:00:00'</c>.</summary>
    Timestamp,
    /// <summary><c>INTERVAL 7 DAY</c>, <c>INTERVAL '2 hours'</c>.</summary>
    Interval,
}

/// <summary>A constant: <paramref name="Text"/> is its text as written (the string's content, unquoted).</summary>
public sealed record LiteralSyntax(int Position, LiteralKind Kind, string Text) : ConditionSyntax(Position);

/// <summary><c>NOT x</c>, <c>-x</c>, <c>+x</c>.</summary>
public sealed record UnarySyntax(int Position, string Operator, ConditionSyntax Operand) : ConditionSyntax(Position);

/// <summary>
/// <c>AND</c>, <c>OR</c>, a comparison (<c>= &lt;&gt; &lt; &lt;= &gt; &gt;=</c>) or arithmetic
/// (<c>+ - * / // %</c>); <see cref="ConditionSyntax.Position"/> is the operator's.
/// </summary>
public sealed record BinarySyntax(int Position, string Operator, ConditionSyntax Left, ConditionSyntax Right) : ConditionSyntax(Position);

/// <summary><c>x IS [NOT] NULL</c>.</summary>
public sealed record IsNullSyntax(int Position, ConditionSyntax Operand, bool Negated) : ConditionSyntax(Position);

/// <summary><c>x [NOT] BETWEEN low AND high</c>.</summary>
public sealed record BetweenSyntax(int Position, ConditionSyntax Operand, ConditionSyntax Low, ConditionSyntax High, bool Negated) : ConditionSyntax(Position);

/// <summary><c>x [NOT] IN (a, b, …)</c>.</summary>
public sealed record InSyntax(int Position, ConditionSyntax Operand, IReadOnlyList<ConditionSyntax> Items, bool Negated) : ConditionSyntax(Position);

/// <summary><c>x [NOT] LIKE pattern [ESCAPE 'c']</c>, or <c>ILIKE</c> (case-insensitive).</summary>
public sealed record LikeSyntax(int Position, ConditionSyntax Operand, ConditionSyntax Pattern, bool Negated, bool CaseInsensitive, string? Escape) : ConditionSyntax(Position);

/// <summary>A function call, <c>name(args)</c>; also the argument-less <c>current_date</c> and <c>current_timestamp</c>.</summary>
public sealed record CallSyntax(int Position, string Name, IReadOnlyList<ConditionSyntax> Arguments) : ConditionSyntax(Position);

/// <summary>Walks a condition's syntax tree.</summary>
public static class ConditionColumns
{
    /// <summary>Every column the condition names, with where (a column named twice appears twice).</summary>
    public static List<ColumnSyntax> Of(ConditionSyntax condition)
    {
        var columns = new List<ColumnSyntax>();
        void Visit(ConditionSyntax node)
        {
            switch (node)
            {
                case ColumnSyntax column: columns.Add(column); break;
                case UnarySyntax unary: Visit(unary.Operand); break;
                case BinarySyntax binary: Visit(binary.Left); Visit(binary.Right); break;
                case IsNullSyntax isNull: Visit(isNull.Operand); break;
                case BetweenSyntax between: Visit(between.Operand); Visit(between.Low); Visit(between.High); break;
                case InSyntax @in:
                    Visit(@in.Operand);
                    foreach (var item in @in.Items)
                    {
                        Visit(item);
                    }
                    break;
                case LikeSyntax like: Visit(like.Operand); Visit(like.Pattern); break;
                case CallSyntax call:
                    foreach (var argument in call.Arguments)
                    {
                        Visit(argument);
                    }
                    break;
            }
        }
        Visit(condition);
        return columns;
    }
}
