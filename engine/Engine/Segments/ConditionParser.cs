using System.Globalization;
using System.Text;

namespace Engine.Segments;

/// <summary>
/// Parses a segment condition, a SQL boolean expression, into a <see cref="ConditionSyntax"/> tree. Precedence, from
/// loosest: <c>OR</c>; <c>AND</c>; <c>NOT</c>; comparisons, <c>IS [NOT] NULL</c>, <c>[NOT] BETWEEN</c>,
/// <c>[NOT] IN</c>, <c>[NOT] LIKE</c> / <c>ILIKE</c> (not chainable: <c>a = b = c</c> is an error, as in PostgreSQL);
/// <c>+ -</c>; <c>* / // %</c>; unary <c>- +</c>. Keywords are case-insensitive; strings are in single quotes
/// (<c>''</c> for a quote), names that are not plain words in double quotes.
/// </summary>
public sealed class ConditionParser
{
    private readonly string _text;
    private readonly List<Token> _tokens;
    private int _next;

    private ConditionParser(string text)
    {
        _text = text;
        _tokens = Tokenize(text);
    }

    /// <summary>Parses <paramref name="text"/>; throws <see cref="ConditionException"/> at the first error.</summary>
    public static ConditionSyntax Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parser = new ConditionParser(text);
        if (parser.Peek.Kind == TokenKind.End)
        {
            throw new ConditionException(0, "the condition is empty");
        }
        var expression = parser.ParseOr();
        if (parser.Peek.Kind != TokenKind.End)
        {
            throw parser.Unexpected("an operator or the end of the condition");
        }
        return expression;
    }

    private enum TokenKind { Word, QuotedName, String, Number, Symbol, End }

    private readonly record struct Token(TokenKind Kind, string Text, int Position)
    {
        public bool IsKeyword(string keyword) => Kind == TokenKind.Word && Text.Equals(keyword, StringComparison.OrdinalIgnoreCase);

        public bool IsSymbol(string symbol) => Kind == TokenKind.Symbol && Text == symbol;
    }

    private Token Peek => _tokens[_next];

    private Token PeekAt(int ahead) => _tokens[Math.Min(_next + ahead, _tokens.Count - 1)];

    private Token Take() => _tokens[_next == _tokens.Count - 1 ? _next : _next++];

    private bool TakeKeyword(string keyword)
    {
        if (Peek.IsKeyword(keyword))
        {
            _next++;
            return true;
        }
        return false;
    }

    private bool TakeSymbol(string symbol)
    {
        if (Peek.IsSymbol(symbol))
        {
            _next++;
            return true;
        }
        return false;
    }

    private void ExpectSymbol(string symbol, string what)
    {
        if (!TakeSymbol(symbol))
        {
            throw Unexpected(what);
        }
    }

    private ConditionException Unexpected(string expected)
    {
        var token = Peek;
        var found = token.Kind switch
        {
            TokenKind.End => "the end of the condition",
            TokenKind.String => $"the string '{token.Text}'",
            _ => $"'{token.Text}'",
        };
        return new ConditionException(token.Position, $"expected {expected}, found {found}");
    }

    private ConditionSyntax ParseOr()
    {
        var left = ParseAnd();
        while (Peek.IsKeyword("OR"))
        {
            var at = Take().Position;
            left = new BinarySyntax(at, "OR", left, ParseAnd());
        }
        return left;
    }

    private ConditionSyntax ParseAnd()
    {
        var left = ParseNot();
        while (Peek.IsKeyword("AND"))
        {
            var at = Take().Position;
            left = new BinarySyntax(at, "AND", left, ParseNot());
        }
        return left;
    }

    private ConditionSyntax ParseNot()
    {
        if (Peek.IsKeyword("NOT"))
        {
            var at = Take().Position;
            return new UnarySyntax(at, "NOT", ParseNot());
        }
        return ParsePredicate();
    }

    private static readonly string[] Comparisons = ["=", "==", "<>", "!=", "<", "<=", ">", ">="];

    private ConditionSyntax ParsePredicate()
    {
        var left = ParseAdditive();
        var token = Peek;
        if (token.Kind == TokenKind.Symbol && Array.IndexOf(Comparisons, token.Text) >= 0)
        {
            Take();
            var op = token.Text switch { "==" => "=", "!=" => "<>", _ => token.Text };
            var comparison = new BinarySyntax(token.Position, op, left, ParseAdditive());
            RejectChain();
            return comparison;
        }
        if (token.IsKeyword("IS"))
        {
            Take();
            var negated = TakeKeyword("NOT");
            if (!TakeKeyword("NULL"))
            {
                throw Unexpected(negated ? "NULL after IS NOT" : "NULL or NOT NULL after IS");
            }
            var test = new IsNullSyntax(token.Position, left, negated);
            RejectChain();
            return test;
        }
        var not = token.IsKeyword("NOT") && (PeekAt(1).IsKeyword("BETWEEN") || PeekAt(1).IsKeyword("IN") || PeekAt(1).IsKeyword("LIKE") || PeekAt(1).IsKeyword("ILIKE"));
        if (not)
        {
            Take();
            token = Peek;
        }
        ConditionSyntax? result = null;
        if (token.IsKeyword("BETWEEN"))
        {
            Take();
            var low = ParseAdditive();
            if (!TakeKeyword("AND"))
            {
                throw Unexpected("AND in BETWEEN … AND …");
            }
            result = new BetweenSyntax(token.Position, left, low, ParseAdditive(), not);
        }
        else if (token.IsKeyword("IN"))
        {
            Take();
            ExpectSymbol("(", "'(' after IN");
            var items = new List<ConditionSyntax> { ParseAdditive() };
            while (TakeSymbol(","))
            {
                items.Add(ParseAdditive());
            }
            ExpectSymbol(")", "',' or ')' in the IN list");
            result = new InSyntax(token.Position, left, items, not);
        }
        else if (token.IsKeyword("LIKE") || token.IsKeyword("ILIKE"))
        {
            Take();
            var pattern = ParseAdditive();
            string? escape = null;
            if (TakeKeyword("ESCAPE"))
            {
                var escapeToken = Peek;
                if (escapeToken.Kind != TokenKind.String || escapeToken.Text.Length != 1)
                {
                    throw new ConditionException(escapeToken.Position, "ESCAPE takes a string of one character, such as ESCAPE '\\'");
                }
                Take();
                escape = escapeToken.Text;
            }
            result = new LikeSyntax(token.Position, left, pattern, not, token.IsKeyword("ILIKE"), escape);
        }
        if (result is null)
        {
            return left;
        }
        RejectChain();
        return result;
    }

    // a = b = c, a < b IS NULL: PostgreSQL rejects these; reading them left to right would hide a likely mistake.
    private void RejectChain()
    {
        var token = Peek;
        if ((token.Kind == TokenKind.Symbol && Array.IndexOf(Comparisons, token.Text) >= 0)
            || token.IsKeyword("IS") || token.IsKeyword("BETWEEN") || token.IsKeyword("IN") || token.IsKeyword("LIKE") || token.IsKeyword("ILIKE"))
        {
            throw new ConditionException(token.Position, $"'{token.Text}' cannot follow another comparison: add parentheses or AND");
        }
    }

    private ConditionSyntax ParseAdditive()
    {
        var left = ParseMultiplicative();
        while (Peek.IsSymbol("+") || Peek.IsSymbol("-"))
        {
            var op = Take();
            left = new BinarySyntax(op.Position, op.Text, left, ParseMultiplicative());
        }
        return left;
    }

    private ConditionSyntax ParseMultiplicative()
    {
        var left = ParseUnary();
        while (Peek.IsSymbol("*") || Peek.IsSymbol("/") || Peek.IsSymbol("//") || Peek.IsSymbol("%"))
        {
            var op = Take();
            left = new BinarySyntax(op.Position, op.Text, left, ParseUnary());
        }
        return left;
    }

    private ConditionSyntax ParseUnary()
    {
        if (Peek.IsSymbol("-") || Peek.IsSymbol("+"))
        {
            var op = Take();
            var operand = ParseUnary();
            // -5 is one literal, so that the smallest BIGINT can be written.
            if (op.Text == "-" && operand is LiteralSyntax { Kind: LiteralKind.Integer or LiteralKind.Decimal or LiteralKind.Double } number && !number.Text.StartsWith('-'))
            {
                return number with { Position = op.Position, Text = "-" + number.Text };
            }
            return new UnarySyntax(op.Position, op.Text, operand);
        }
        return ParsePrimary();
    }

    private ConditionSyntax ParsePrimary()
    {
        var token = Peek;
        switch (token.Kind)
        {
            case TokenKind.Number:
                Take();
                var kind = token.Text.Contains('e', StringComparison.OrdinalIgnoreCase) ? LiteralKind.Double
                    : token.Text.Contains('.', StringComparison.Ordinal) ? LiteralKind.Decimal : LiteralKind.Integer;
                return new LiteralSyntax(token.Position, kind, token.Text);
            case TokenKind.String:
                Take();
                return new LiteralSyntax(token.Position, LiteralKind.String, token.Text);
            case TokenKind.QuotedName:
                Take();
                return new ColumnSyntax(token.Position, token.Text, Quoted: true);
            case TokenKind.Symbol when token.Text == "(":
                Take();
                var inner = ParseOr();
                ExpectSymbol(")", "')'");
                return inner;
            case TokenKind.Word:
                return ParseWord();
            default:
                throw Unexpected("a value, a column or '('");
        }
    }

    private static readonly string[] Reserved = ["AND", "OR", "NOT", "IS", "IN", "LIKE", "ILIKE", "BETWEEN", "ESCAPE", "THEN", "ELSE", "END", "WHEN", "CASE", "SELECT", "FROM", "WHERE"];

    private ConditionSyntax ParseWord()
    {
        var token = Take();
        var upper = token.Text.ToUpperInvariant();
        switch (upper)
        {
            case "NULL":
                return new LiteralSyntax(token.Position, LiteralKind.Null, "NULL");
            case "TRUE" or "FALSE":
                return new LiteralSyntax(token.Position, LiteralKind.Boolean, upper);
            case "CURRENT_DATE" or "CURRENT_TIMESTAMP" when !Peek.IsSymbol("("):
                return new CallSyntax(token.Position, upper.ToLowerInvariant(), []);
            case "DATE" or "TIMESTAMP" when Peek.Kind == TokenKind.String:
                var value = Take();
                return new LiteralSyntax(token.Position, upper == "DATE" ? LiteralKind.Date : LiteralKind.Timestamp, value.Text);
            case "INTERVAL":
                return ParseInterval(token);
        }
        if (Array.IndexOf(Reserved, upper) >= 0)
        {
            _next--;
            throw Unexpected("a value, a column or '('");
        }
        if (Peek.IsSymbol("("))
        {
            Take();
            var arguments = new List<ConditionSyntax>();
            if (!TakeSymbol(")"))
            {
                arguments.Add(ParseOr());
                while (TakeSymbol(","))
                {
                    arguments.Add(ParseOr());
                }
                ExpectSymbol(")", "',' or ')' after the function's arguments");
            }
            return new CallSyntax(token.Position, token.Text.ToLowerInvariant(), arguments);
        }
        return new ColumnSyntax(token.Position, token.Text, Quoted: false);
    }

    // INTERVAL '7 days', INTERVAL '7' DAY, INTERVAL 7 DAY: kept as text "<number> <unit> …" for the binder.
    private LiteralSyntax ParseInterval(Token keyword)
    {
        var value = Peek;
        if (value.Kind is not (TokenKind.String or TokenKind.Number))
        {
            throw Unexpected("a quantity after INTERVAL, such as INTERVAL 7 DAY or INTERVAL '7 days'");
        }
        Take();
        var text = value.Text;
        if (Peek.Kind == TokenKind.Word && IntervalUnits.Contains(Peek.Text.ToLowerInvariant()))
        {
            text += " " + Take().Text;
        }
        else if (value.Kind == TokenKind.Number)
        {
            throw Unexpected("a unit after the number (DAY, HOUR, MONTH, …)");
        }
        return new LiteralSyntax(keyword.Position, LiteralKind.Interval, text);
    }

    internal static readonly HashSet<string> IntervalUnits =
    [
        "microsecond", "microseconds", "millisecond", "milliseconds", "second", "seconds", "minute", "minutes",
        "hour", "hours", "day", "days", "week", "weeks", "month", "months", "year", "years",
    ];

    private static List<Token> Tokenize(string text)
    {
        var tokens = new List<Token>();
        var i = 0;
        while (i < text.Length)
        {
            var c = text[i];
            if (char.IsWhiteSpace(c))
            {
                i++;
                continue;
            }
            if (c == '-' && i + 1 < text.Length && text[i + 1] == '-')
            {
                // A comment runs to the end of the line.
                while (i < text.Length && text[i] != '\n')
                {
                    i++;
                }
                continue;
            }
            var start = i;
            if (char.IsLetter(c) || c == '_')
            {
                while (i < text.Length && (char.IsLetterOrDigit(text[i]) || text[i] == '_'))
                {
                    i++;
                }
                tokens.Add(new Token(TokenKind.Word, text[start..i], start));
            }
            else if (char.IsAsciiDigit(c) || (c == '.' && i + 1 < text.Length && char.IsAsciiDigit(text[i + 1])))
            {
                while (i < text.Length && char.IsAsciiDigit(text[i]))
                {
                    i++;
                }
                if (i < text.Length && text[i] == '.')
                {
                    i++;
                    while (i < text.Length && char.IsAsciiDigit(text[i]))
                    {
                        i++;
                    }
                }
                if (i < text.Length && (text[i] == 'e' || text[i] == 'E'))
                {
                    var exponent = i + 1;
                    if (exponent < text.Length && (text[exponent] == '+' || text[exponent] == '-'))
                    {
                        exponent++;
                    }
                    if (exponent < text.Length && char.IsAsciiDigit(text[exponent]))
                    {
                        i = exponent;
                        while (i < text.Length && char.IsAsciiDigit(text[i]))
                        {
                            i++;
                        }
                    }
                }
                if (i < text.Length && (char.IsLetter(text[i]) || text[i] == '_'))
                {
                    throw new ConditionException(start, $"'{text[start..(i + 1)]}' is not a number; names cannot start with a digit unless written in double quotes");
                }
                tokens.Add(new Token(TokenKind.Number, text[start..i], start));
            }
            else if (c == '\'' || c == '"')
            {
                var value = new StringBuilder();
                i++;
                while (true)
                {
                    if (i >= text.Length)
                    {
                        throw new ConditionException(start, c == '\'' ? "unterminated string: a closing ' is missing" : "unterminated quoted name: a closing \" is missing");
                    }
                    if (text[i] == c)
                    {
                        if (i + 1 < text.Length && text[i + 1] == c)
                        {
                            value.Append(c);
                            i += 2;
                            continue;
                        }
                        i++;
                        break;
                    }
                    value.Append(text[i++]);
                }
                tokens.Add(new Token(c == '\'' ? TokenKind.String : TokenKind.QuotedName, value.ToString(), start));
            }
            else
            {
                var two = i + 1 < text.Length ? text.Substring(i, 2) : "";
                if (two is "<=" or ">=" or "<>" or "!=" or "==" or "//")
                {
                    tokens.Add(new Token(TokenKind.Symbol, two, start));
                    i += 2;
                }
                else if ("=<>+-*/%(),".Contains(c, StringComparison.Ordinal))
                {
                    tokens.Add(new Token(TokenKind.Symbol, c.ToString(), start));
                    i++;
                }
                else
                {
                    throw new ConditionException(start, $"unexpected character '{c}'{(c == ';' ? " (a condition is one expression, without ';')" : "")}");
                }
            }
        }
        tokens.Add(new Token(TokenKind.End, "", text.TrimEnd().Length));
        return tokens;
    }

    /// <summary>Parses a decimal literal's text into an unscaled integer and its scale (digits after the point).</summary>
    internal static bool TryParseDecimal(string text, out long unscaled, out int scale)
    {
        var point = text.IndexOf('.', StringComparison.Ordinal);
        scale = point < 0 ? 0 : text.Length - point - 1;
        var digits = point < 0 ? text : string.Concat(text.AsSpan(0, point), text.AsSpan(point + 1));
        if (digits is "" or "-")
        {
            digits += "0";
        }
        return long.TryParse(digits, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out unscaled) && scale <= 18;
    }
}
