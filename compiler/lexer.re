// lexer.re: the .cae tokenizer (re2c). Newlines end statements, except where
// a statement obviously goes on: inside () or [], after an operator or a
// comma, and before a line that starts with `->` or `else`.
#include "parser.h"

#include <stdlib.h>
#include <string.h>

static Loc here(Lexer *lx, const unsigned char *p) {
  return (Loc){lx->src, lx->line, (int)(p - lx->bol) + 1};
}

static void set_loc(Lexer *lx, YYLTYPE *lloc) {
  lloc->first_line = lloc->last_line = lx->line;
  lloc->first_column = (int)(lx->tok - lx->bol) + 1;
  lloc->last_column = (int)(lx->cur - lx->bol);
}

static int64_t int_value(Lexer *lx) {
  int64_t v = 0;
  for (const unsigned char *p = lx->tok; p < lx->cur; p++)
    if (!mul_ok(v, 10, &v) || !add_ok(v, *p - '0', &v)) {
      error_at(lx->ctx, here(lx, lx->tok), "integer literal '%.*s' is too large",
               (int)(lx->cur - lx->tok), (const char *)lx->tok);
      return 0;
    }
  return v;
}

static double float_value(Lexer *lx) {
  char buf[64];
  size_t n = (size_t)(lx->cur - lx->tok);
  if (n >= sizeof buf) {
    error_at(lx->ctx, here(lx, lx->tok), "number literal is too long");
    return 0;
  }
  memcpy(buf, lx->tok, n);
  buf[n] = 0;
  double v = strtod(buf, NULL);
  if (v > 1e300) {
    error_at(lx->ctx, here(lx, lx->tok), "number literal '%s' is out of range", buf);
    return 0;
  }
  return v;
}

// The raw scanner: one token, or NL, or END.
static int scan(YYSTYPE *lval, Lexer *lx) {
  for (;;) {
    lx->tok = lx->cur;
    /*!re2c
      re2c:define:YYCTYPE = "unsigned char";
      re2c:define:YYCURSOR = "lx->cur";
      re2c:define:YYMARKER = "lx->mar";
      re2c:define:YYLIMIT = "lx->lim";
      re2c:yyfill:enable = 0;
      re2c:eof = 0;

      ident = [a-zA-Z_][a-zA-Z0-9_]*;
      dec   = [0-9]+;
      exp   = [eE] [+-]? dec;

      $            { return END; }
      [ \t\r]+     { continue; }
      "#" [^\n]*   { continue; }
      "\n"         { return NL; }

      "->"  { return ARROW; }
      "=="  { return EQ; }
      "!="  { return NE; }
      "<="  { return LE; }
      ">="  { return GE; }
      [-+*/<>=(),:{}] | "[" | "]" { return lx->tok[0]; }

      "model"  { return MODEL; }
      "block"  { return BLOCK; }
      "input"  { return INPUT; }
      "return" { return RETURN; }
      "if"     { return IF; }
      "else"   { return ELSE; }
      "import" { return IMPORT; }
      "train"  { return TRAIN; }
      "true"   { return TRUE; }
      "false"  { return FALSE; }
      "and"    { return AND; }
      "or"     { return OR; }
      "not"    { return NOT; }

      ident {
        lval->s = arena_strndup(lx->ctx->arena, (const char *)lx->tok, (size_t)(lx->cur - lx->tok));
        return IDENT;
      }
      dec { lval->i = int_value(lx); return INT; }
      dec "." [0-9]* exp? | "." dec exp? | dec exp { lval->f = float_value(lx); return FLOAT; }

      ["] [\x20-\x21\x23-\x7e]* ["] {
        lval->s = arena_strndup(lx->ctx->arena, (const char *)lx->tok + 1, (size_t)(lx->cur - lx->tok - 2));
        return STRING;
      }
      ["] [\x20-\x21\x23-\x7e]* {
        error_at(lx->ctx, here(lx, lx->tok), "unterminated string (strings hold printable ASCII on one line)");
        continue;
      }
      [\x80-\xff]+ {
        error_at(lx->ctx, here(lx, lx->tok), "non-ASCII text outside a comment (only comments may hold it)");
        continue;
      }
      * {
        unsigned ch = lx->tok[0];
        if (ch >= 0x21 && ch < 0x7f)
          error_at(lx->ctx, here(lx, lx->tok), "unexpected character '%c'", (int)ch);
        else
          error_at(lx->ctx, here(lx, lx->tok), "unexpected byte 0x%02X", ch);
        continue;
      }
    */
  }
}

// Tokens after which a newline cannot end the statement.
static bool expects_more(int t) {
  switch (t) {
  case 0: case NL: case ARROW: case ',': case '=': case '(': case '[': case '{': case ':':
  case '+': case '-': case '*': case '/': case '<': case '>': case EQ: case NE: case LE: case GE:
  case AND: case OR: case NOT: case ELSE:
    return true;
  default:
    return false;
  }
}

// Does the next non-blank, non-comment line start with `->` or `else`?
static bool next_line_continues(const Lexer *lx) {
  const unsigned char *p = lx->cur;
  for (;;) {
    while (p < lx->lim && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
      p++;
    if (p < lx->lim && *p == '#') {
      while (p < lx->lim && *p != '\n')
        p++;
      continue;
    }
    break;
  }
  size_t left = (size_t)(lx->lim - p);
  if (left >= 2 && p[0] == '-' && p[1] == '>')
    return true;
  if (left >= 4 && !memcmp(p, "else", 4)) {
    unsigned char after = left > 4 ? p[4] : ' ';
    return !(after == '_' || (after >= '0' && after <= '9') || ((after | 0x20) >= 'a' && (after | 0x20) <= 'z'));
  }
  return false;
}

int yylex(YYSTYPE *lval, YYLTYPE *lloc, Lexer *lx) {
  for (;;) {
    int t = scan(lval, lx);
    set_loc(lx, lloc);
    if (t == NL) {
      bool skip = lx->depth > 0 || expects_more(lx->last) || next_line_continues(lx);
      lx->line++;
      lx->bol = lx->cur;
      if (skip)
        continue;
    }
    if (t == END && !expects_more(lx->last) && lx->depth == 0)
      t = NL; // a file's last line needs no newline; END comes on the next call
    if (t == '(' || t == '[') {
      if (lx->depth < MAX_OPEN)
        lx->open[lx->depth] = here(lx, lx->tok);
      lx->depth++;
    }
    else if ((t == ')' || t == ']') && lx->depth > 0)
      lx->depth--;
    lx->last = t;
    return t;
  }
}
