// ops.h: every op of the .cae language, once, in the order caec lists them.
// CAEC_OPS(OP, ACT) expands each row with one of two X-macros:
//
// OP(ID, name, min inputs, max inputs, SHAPE, FAMILY, FUSE): an op with rules
// of its own: its arguments (shapes.c's ARGS_ID), its shape, parameters and
// FLOPs (the rule shape_SHAPE of shapes.c, which a family of ops shares), the
// rules of its FAMILY, which each stage reaches through a table indexed by
// OpKind: its lowering and adjoint (autodiff.c's lower_FAMILY and
// adjoint_FAMILY) and its reference kernels (interp.c's interp_FAMILY_fwd and
// interp_FAMILY_bwd), and what fusion may do with it (FUSE, below). The
// emitters (emit_c_*.c, emit_cuda.c) follow the kernel kinds those rules make,
// and `caec ir` prints the arguments its ARGS_ID lists; within a family the
// rules tell its ops apart (conv from convT), and graph.c's one-line summary
// names the attributes worth a glance. README's "Adding an op" lists the files
// a new op touches.
//
// ACT(ID, name, FLOPs per element, SAVED, ALPHA or NO_ALPHA, FUSE): an elementwise
// activation y = f(x), or with ALPHA y = f(x; alpha) with alpha required and in
// [0, 1]. Its row is all the compiler needs: the argument, shape, FLOPs,
// adjoint, interpreter and both emitters follow from it. The adjoint is
// dx = dy f'(x), computed from the SAVED tensor, X (the input) or Y (the
// output, where f' is a function of y). Its kernels, by name: the reference
// ref_NAME_fwd and ref_NAME_bwd (runtime/kernels/ref.h, double), the C kernels
// kp_NAME and kp_NAME_bwd (kern.h), and the CUDA device ops cu_NAME and
// cu_NAME_bwd (runtime/cuda/cu_pointwise.cuh), called as
//   NAME(count, [alpha,] x, y)    NAME_bwd(count, [alpha,] x or y, dy, dx)
#ifndef CAEC_OPS_H
#define CAEC_OPS_H

#define CAEC_OPS(OP, ACT)                                                          \
  OP(CONV, conv, 1, 1, conv, conv, F_VIEW_IN | F_EPILOGUE)                         \
  OP(CONVT, convT, 1, 1, conv, conv, F_VIEW_IN | F_EPILOGUE)                       \
  OP(BN, bn, 1, 1, norm, norm, F_VIEW_IN | F_ACT_OUT | F_PROLOGUE)                 \
  OP(GN, gn, 1, 1, norm, norm, F_VIEW_IN | F_ACT_OUT)                              \
  ACT(RELU, relu, 1, Y, NO_ALPHA, F_INTO_OUT)                                      \
  ACT(LEAKY_RELU, leaky_relu, 1, X, ALPHA, 0)                                      \
  ACT(SIGMOID, sigmoid, 4, Y, NO_ALPHA, F_INTO_LOSS)                               \
  ACT(TANH, tanh, 4, Y, NO_ALPHA, 0)                                               \
  OP(ADD, add, 2, 2, join, add, F_ACT_OUT | F_RESIDUAL)                            \
  OP(CONCAT, concat, 2, 16, join, concat, F_AS_VIEW)                               \
  OP(SPATIAL_DROPOUT, spatial_dropout, 1, 1, dropout, dropout, 0)                  \
  OP(IDENTITY, identity, 1, 1, same, identity, F_ALIAS)

// The FUSE column: what fusion.c may do with an op, as F_* flags or 0. Each
// flag is a promise that the kernels named implement it.
//   F_ACT_OUT    its kernel also applies the F_INTO_OUT activation that is its
//                only consumer (norm and add kernels: relu in their epilogue,
//                the backward recomputing the mask);
//   F_INTO_OUT   that activation;
//   F_INTO_LOSS  an activation the loss kernel computes when it is the model's
//                last (the loss then writes the gradient of the logits);
//   F_VIEW_IN    it reads a two-piece concatenation through a two-pointer view;
//   F_AS_VIEW    it can be such a view, never copied;
//   F_EPILOGUE   a convolution: its epilogue adds the bias and can add a
//                residual (F_RESIDUAL) and sum its output's statistics;
//   F_RESIDUAL   it can be computed in the epilogue of its later input;
//   F_PROLOGUE   consumers that are all F_EPILOGUE can apply it as they load
//                their input, from the statistics their producer summed;
//   F_ALIAS      its output is its input: every stage looks through it.
enum {
  F_ACT_OUT = 1 << 0,
  F_INTO_OUT = 1 << 1,
  F_INTO_LOSS = 1 << 2,
  F_VIEW_IN = 1 << 3,
  F_AS_VIEW = 1 << 4,
  F_EPILOGUE = 1 << 5,
  F_RESIDUAL = 1 << 6,
  F_PROLOGUE = 1 << 7,
  F_ALIAS = 1 << 8,
};

// Helpers for the expansions: OpKind's names, nothing, and a switch's case
// label for every activation.
#define CAEC_OP_ENUM(id, ...) OP_##id,
#define CAEC_OP_SKIP(...)
#define ACT_CASE(id, ...) case OP_##id:
#define ACTIVATION_CASES CAEC_OPS(CAEC_OP_SKIP, ACT_CASE)
// An activation kernel's alpha argument, when its row has one.
#define ALPHA_ARG(n) (n)->alpha,
#define NO_ALPHA_ARG(n)

#endif
