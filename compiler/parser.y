// parser.y: the .cae grammar (Bison). Builds the AST of caec.h; every node
// keeps the location of the token that names it, for diagnostics.
%code requires {
#include "caec.h"

typedef struct Lexer {
  Ctx *ctx;
  Program *prog;
  Source *src;
  bool is_main;
  int import_depth;
  const unsigned char *cur, *mar, *lim, *bol, *tok;
  int line, depth, last;
  Loc open[16]; // where the innermost unclosed brackets were opened
} Lexer;
enum { MAX_OPEN = 16 };
}

%code provides {
int yylex(YYSTYPE *lval, YYLTYPE *lloc, Lexer *lx);
}

%code {
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define YYMAXDEPTH 2000 // nesting deeper than this is an error, not a stack overflow

static void yyerror(YYLTYPE *lloc, Lexer *lx, const char *msg);
static Loc L(Lexer *lx, YYLTYPE p) { return (Loc){lx->src, p.first_line, p.first_column}; }
static Expr *new_expr(Lexer *lx, ExprKind k, YYLTYPE p);
static Expr *binary(Lexer *lx, Operator op, Expr *a, Expr *b, YYLTYPE p);
static Stmt *new_stmt(Lexer *lx, StmtKind k, YYLTYPE p);
static Stmt *append(Stmt *list, Stmt *s);
static void add_block(Lexer *lx, Block *b);
static void set_model(Lexer *lx, const char *name, YYLTYPE p, Stmt *body);
static void set_train(Lexer *lx, YYLTYPE p, Stmt *body);
static void import_file(Lexer *lx, const char *path, YYLTYPE p);
static Type type_named(Lexer *lx, const char *name, YYLTYPE p);
static Block *new_block(Lexer *lx);
}

%define api.pure full
%define parse.error detailed
%locations
%param {Lexer *lx}
%expect 0

%union {
  int64_t i;
  double f;
  const char *s;
  Expr *e;
  Stmt *st;
  Block *b;
  Arg arg;
  BlockParam bp;
}

%token END 0 "end of file"
%token NL "end of line"
%token ARROW "'->'" EQ "'=='" NE "'!='" LE "'<='" GE "'>='"
%token MODEL "'model'" BLOCK "'block'" INPUT "'input'" RETURN "'return'" IF "'if'" ELSE "'else'"
%token IMPORT "'import'" TRAIN "'train'" TRUE "'true'" FALSE "'false'" AND "'and'" OR "'or'" NOT "'not'"
%token <s> IDENT "identifier" STRING "string"
%token <i> INT "integer"
%token <f> FLOAT "number"

%type <e> expr primary callee call_args arg_list tuple
%type <arg> arg
%type <st> stmts stmt body if_stmt else_part
%type <b> params param_list
%type <bp> param

%precedence ARROW
%left OR
%left AND
%precedence NOT
%nonassoc EQ NE '<' LE '>' GE
%left '+' '-'
%left '*' '/'
%precedence UMINUS

%%

file:
    %empty
  | file NL
  | file item NL
  | file error NL { yyerrok; }
  ;

item:
    IMPORT STRING               { import_file(lx, $2, @2); }
  | BLOCK IDENT '(' params ')' body {
                                  $4->name = $2; $4->loc = L(lx, @2); $4->body = $6;
                                  add_block(lx, $4); }
  | MODEL IDENT body            { set_model(lx, $2, @2, $3); }
  | TRAIN body                  { set_train(lx, @1, $2); }
  ;

params:
    %empty                      { $$ = new_block(lx); }
  | param_list
  ;

param_list:
    param                       { $$ = new_block(lx); *ARENA_PUSH(lx->ctx->arena, $$->params, $$->nparams, $$->params_cap) = $1; }
  | param_list ',' param        { $$ = $1; *ARENA_PUSH(lx->ctx->arena, $$->params, $$->nparams, $$->params_cap) = $3; }
  ;

param:
    IDENT ':' IDENT             { $$ = (BlockParam){$1, L(lx, @1), type_named(lx, $3, @3), NULL}; }
  | IDENT ':' IDENT '=' expr    { $$ = (BlockParam){$1, L(lx, @1), type_named(lx, $3, @3), $5}; }
  ;

body:
    '{' stmts '}'               { $$ = $2; }
  | '{' stmts stmt '}'          { $$ = append($2, $3); }
  ;

stmts:
    %empty                      { $$ = NULL; }
  | stmts NL                    { $$ = $1; }
  | stmts stmt NL               { $$ = append($1, $2); }
  | stmts error NL              { $$ = $1; yyerrok; }
  ;

stmt:
    IDENT '=' expr              { $$ = new_stmt(lx, S_ASSIGN, @1); $$->name = $1; $$->value = $3; }
  | RETURN expr                 { $$ = new_stmt(lx, S_RETURN, @1); $$->value = $2; }
  | INPUT IDENT ':' '[' arg_list ']' {
                                  $$ = new_stmt(lx, S_INPUT, @2); $$->name = $2;
                                  if ($5->nargs != 4)
                                    error_at(lx->ctx, L(lx, @4),
                                             "input shape needs 4 dimensions [batch, channels, height, width], got %d",
                                             $5->nargs);
                                  for (int i = 0; i < 4 && i < $5->nargs; i++) $$->dims[i] = $5->args[i].value; }
  | if_stmt
  ;

if_stmt:
    IF expr body else_part      { $$ = new_stmt(lx, S_IF, @1); $$->cond = $2; $$->then_body = $3; $$->else_body = $4; }
  ;

else_part:
    %empty                      { $$ = NULL; }
  | ELSE body                   { $$ = $2; }
  | ELSE if_stmt                { $$ = $2; }
  ;

expr:
    primary
  | expr ARROW callee           { $$ = $3; $$->input = $1; }
  | expr ARROW callee '*' primary { $$ = $3; $$->input = $1; $$->repeat = $5; }
  | expr '+' expr               { $$ = binary(lx, OP_ADD_, $1, $3, @2); }
  | expr '-' expr               { $$ = binary(lx, OP_SUB_, $1, $3, @2); }
  | expr '*' expr               { $$ = binary(lx, OP_MUL_, $1, $3, @2); }
  | expr '/' expr               { $$ = binary(lx, OP_DIV_, $1, $3, @2); }
  | expr EQ expr                { $$ = binary(lx, OP_EQ_, $1, $3, @2); }
  | expr NE expr                { $$ = binary(lx, OP_NE_, $1, $3, @2); }
  | expr '<' expr               { $$ = binary(lx, OP_LT_, $1, $3, @2); }
  | expr LE expr                { $$ = binary(lx, OP_LE_, $1, $3, @2); }
  | expr '>' expr               { $$ = binary(lx, OP_GT_, $1, $3, @2); }
  | expr GE expr                { $$ = binary(lx, OP_GE_, $1, $3, @2); }
  | expr AND expr               { $$ = binary(lx, OP_AND_, $1, $3, @2); }
  | expr OR expr                { $$ = binary(lx, OP_OR_, $1, $3, @2); }
  | '-' expr %prec UMINUS       { $$ = binary(lx, OP_NEG_, $2, NULL, @1); $$->kind = E_UNARY; }
  | NOT expr                    { $$ = binary(lx, OP_NOT_, $2, NULL, @1); $$->kind = E_UNARY; }
  ;

primary:
    IDENT                       { $$ = new_expr(lx, E_NAME, @1); $$->name = $1; }
  | IDENT call_args             { $$ = $2; $$->name = $1; $$->loc = L(lx, @1); }
  | INT                         { $$ = new_expr(lx, E_INT, @1); $$->ival = $1; }
  | FLOAT                       { $$ = new_expr(lx, E_FLOAT, @1); $$->fval = $1; }
  | TRUE                        { $$ = new_expr(lx, E_BOOL, @1); $$->ival = 1; }
  | FALSE                       { $$ = new_expr(lx, E_BOOL, @1); $$->ival = 0; }
  | '(' expr ')'                { $$ = $2; }
  | tuple ')'                   { $$ = $1; }
  ;

tuple:
    '(' expr ',' expr           { $$ = new_expr(lx, E_TUPLE, @1);
                                  *ARENA_PUSH(lx->ctx->arena, $$->args, $$->nargs, $$->args_cap) = (Arg){NULL, L(lx, @2), $2};
                                  *ARENA_PUSH(lx->ctx->arena, $$->args, $$->nargs, $$->args_cap) = (Arg){NULL, L(lx, @4), $4}; }
  | tuple ',' expr              { $$ = $1; *ARENA_PUSH(lx->ctx->arena, $$->args, $$->nargs, $$->args_cap) = (Arg){NULL, L(lx, @3), $3}; }
  ;

callee:
    IDENT                       { $$ = new_expr(lx, E_CALL, @1); $$->name = $1; }
  | IDENT call_args             { $$ = $2; $$->name = $1; $$->loc = L(lx, @1); }
  ;

call_args:
    '(' ')'                     { $$ = new_expr(lx, E_CALL, @1); }
  | '(' arg_list ')'            { $$ = $2; }
  ;

arg_list:
    arg                         { $$ = new_expr(lx, E_CALL, @1); *ARENA_PUSH(lx->ctx->arena, $$->args, $$->nargs, $$->args_cap) = $1; }
  | arg_list ',' arg            { $$ = $1; *ARENA_PUSH(lx->ctx->arena, $$->args, $$->nargs, $$->args_cap) = $3; }
  ;

arg:
    expr                        { $$ = (Arg){NULL, $1->loc, $1}; }
  | IDENT '=' expr              { $$ = (Arg){$1, L(lx, @1), $3}; }
  ;

%%

static void yyerror(YYLTYPE *lloc, Lexer *lx, const char *msg) {
  if (!strcmp(msg, "memory exhausted"))
    msg = "expressions nest too deeply";
  int errors = lx->ctx->errors;
  error_at(lx->ctx, L(lx, *lloc), "%s", msg);
  if (lx->depth > 0 && lx->ctx->errors > errors)
    note_at(lx->ctx, lx->open[lx->depth < MAX_OPEN ? lx->depth - 1 : MAX_OPEN - 1],
            "the bracket opened here is not closed");
}

static Expr *new_expr(Lexer *lx, ExprKind k, YYLTYPE p) {
  Expr *e = arena_alloc(lx->ctx->arena, sizeof *e);
  e->kind = k;
  e->loc = L(lx, p);
  return e;
}

static Expr *binary(Lexer *lx, Operator op, Expr *a, Expr *b, YYLTYPE p) {
  Expr *e = new_expr(lx, E_BINARY, p);
  e->op = op;
  e->lhs = a;
  e->rhs = b;
  return e;
}

static Stmt *new_stmt(Lexer *lx, StmtKind k, YYLTYPE p) {
  Stmt *s = arena_alloc(lx->ctx->arena, sizeof *s);
  s->kind = k;
  s->loc = L(lx, p);
  return s;
}

static Stmt *append(Stmt *list, Stmt *s) {
  if (!list)
    return s;
  Stmt *t = list;
  while (t->next)
    t = t->next;
  t->next = s;
  return list;
}

static Block *new_block(Lexer *lx) {
  Block *b = arena_alloc(lx->ctx->arena, sizeof *b);
  b->imported = !lx->is_main;
  return b;
}

static Type type_named(Lexer *lx, const char *name, YYLTYPE p) {
  static const struct { const char *name; Type type; } types[] = {
      {"tensor", T_TENSOR}, {"int", T_INT}, {"float", T_FLOAT}, {"bool", T_BOOL}};
  for (size_t i = 0; i < sizeof types / sizeof *types; i++)
    if (!strcmp(name, types[i].name))
      return types[i].type;
  error_at(lx->ctx, L(lx, p), "unknown parameter type '%s' (expected tensor, int, float or bool)", name);
  return T_INT;
}

static void add_block(Lexer *lx, Block *b) {
  Program *prog = lx->prog;
  for (int i = 0; i < prog->nblocks; i++)
    if (!strcmp(prog->blocks[i]->name, b->name)) {
      error_at(lx->ctx, b->loc, "redefinition of block '%s'", b->name);
      note_at(lx->ctx, prog->blocks[i]->loc, "block '%s' was first defined here", b->name);
      return;
    }
  for (int i = 0; i < b->nparams; i++)
    for (int j = 0; j < i; j++)
      if (!strcmp(b->params[i].name, b->params[j].name))
        error_at(lx->ctx, b->params[i].loc, "parameter '%s' appears twice in block '%s'", b->params[i].name,
                 b->name);
  *ARENA_PUSH(lx->ctx->arena, prog->blocks, prog->nblocks, prog->blocks_cap) = b;
}

static void set_model(Lexer *lx, const char *name, YYLTYPE p, Stmt *body) {
  Program *prog = lx->prog;
  if (!lx->is_main)
    error_at(lx->ctx, L(lx, p), "an imported file may hold only blocks, but this one defines model '%s'", name);
  else if (prog->model_name) {
    error_at(lx->ctx, L(lx, p), "a file describes one model, but this is a second one ('%s')", name);
    note_at(lx->ctx, prog->model_loc, "the first model, '%s', is here", prog->model_name);
  } else {
    prog->model_name = name;
    prog->model_loc = L(lx, p);
    prog->model_body = body;
  }
}

static void set_train(Lexer *lx, YYLTYPE p, Stmt *body) {
  Program *prog = lx->prog;
  if (!lx->is_main) {
    error_at(lx->ctx, L(lx, p), "an imported file may hold only blocks, but this one has a train section");
    return;
  }
  if (prog->has_train) {
    error_at(lx->ctx, L(lx, p), "a second train section (one per file)");
    return;
  }
  prog->has_train = true;
  for (Stmt *s = body; s; s = s->next) {
    if (s->kind != S_ASSIGN) {
      error_at(lx->ctx, s->loc, "a train section holds only 'key = value' lines");
      continue;
    }
    *ARENA_PUSH(lx->ctx->arena, prog->train, prog->ntrain, prog->train_cap) = (TrainItem){s->name, s->loc, s->value};
  }
}

// Imports are resolved against the importing file's folder; a file already
// loaded is skipped, which also makes import cycles harmless.
static void import_file(Lexer *lx, const char *path, YYLTYPE p) {
  Ctx *c = lx->ctx;
  Loc at = L(lx, p);
  if (c->no_imports) {
    error_at(c, at, "imports are disabled here");
    return;
  }
  if (lx->import_depth >= MAX_IMPORTS || lx->prog->nloaded >= MAX_IMPORTS) {
    error_at(c, at, "too many imports (limit %d)", MAX_IMPORTS);
    return;
  }
  const char *full = path;
  if (path[0] != '/') {
    char *dir = arena_strndup(c->arena, lx->src->path, strlen(lx->src->path));
    const char *folder = dirname(dir);
    full = strcmp(folder, ".") ? arena_printf(c->arena, "%s/%s", folder, path) : path;
  }
  char real[PATH_MAX];
  const char *key = realpath(full, real) ? arena_strndup(c->arena, real, strlen(real)) : full;
  for (int i = 0; i < lx->prog->nloaded; i++)
    if (!strcmp(lx->prog->loaded[i], key))
      return;
  *ARENA_PUSH(c->arena, lx->prog->loaded, lx->prog->nloaded, lx->prog->loaded_cap) = key;
  Source *src = source_read(c, full, at);
  if (src)
    parse_source(c, lx->prog, src, false, lx->import_depth + 1);
}

bool parse_source(Ctx *c, Program *prog, Source *src, bool is_main, int import_depth) {
  int errors = c->errors;
  Lexer lx = {.ctx = c, .prog = prog, .src = src, .is_main = is_main, .import_depth = import_depth};
  lx.cur = lx.bol = (const unsigned char *)src->text;
  lx.lim = lx.cur + src->len;
  lx.line = 1;
  if (is_main) {
    prog->main_src = src;
    char real[PATH_MAX];
    const char *key = realpath(src->path, real) ? real : src->path;
    *ARENA_PUSH(c->arena, prog->loaded, prog->nloaded, prog->loaded_cap) = arena_strndup(c->arena, key, strlen(key));
  }
  yyparse(&lx);
  return c->errors == errors;
}
