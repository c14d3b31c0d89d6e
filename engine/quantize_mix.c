/*
 * quantize_mix.c: the file types the quantize command makes and which
 * type each tensor gets in them, as llama.cpp b4748 decides it
 * (llama_tensor_get_type, without an importance matrix, for the LLaMA
 * family: no Falcon, MoE or 70B special cases).
 *
 * The rules, in short: a "_S/_M/_L" mix is a base type plus upgrades.
 * output.weight (token_embd.weight when the model ties them) gets Q6_K
 * unless the mix is Q8_0; attention V and FFN down get more bits in some
 * layers (use_more_bits: the first and last eighth and every third layer
 * between), attention output in the Q2_K/Q3_K mixes.  The counters of
 * attention V and FFN down advance as the tensors are met in file order,
 * exactly as llama.cpp's do, so the order of the input matters and the
 * driver calls quantize_mix_type in that order.  A tensor whose rows are
 * not a multiple of the chosen type's block falls back to a 32-block type.
 * 1-D tensors, norms and anything not named *weight keep their type.
 */
#include "engine/quantize.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	int ftype, base;
} ftypes[] = {
	{ "Q4_0", QF_Q4_0, QT_Q4_0 },     { "Q4_1", QF_Q4_1, QT_Q4_1 },
	{ "Q5_0", QF_Q5_0, QT_Q5_0 },     { "Q5_1", QF_Q5_1, QT_Q5_1 },
	{ "Q8_0", QF_Q8_0, QT_Q8_0 },     { "Q2_K", QF_Q2_K, QT_Q2_K },
	{ "Q3_K_S", QF_Q3_K_S, QT_Q3_K }, { "Q3_K_M", QF_Q3_K_M, QT_Q3_K },
	{ "Q3_K_L", QF_Q3_K_L, QT_Q3_K }, { "Q4_K_S", QF_Q4_K_S, QT_Q4_K },
	{ "Q4_K_M", QF_Q4_K_M, QT_Q4_K }, { "Q5_K_S", QF_Q5_K_S, QT_Q5_K },
	{ "Q5_K_M", QF_Q5_K_M, QT_Q5_K }, { "Q6_K", QF_Q6_K, QT_Q6_K },
};
#define N_FTYPES (sizeof ftypes / sizeof ftypes[0])

int
quantize_ftype_parse(const char *name)
{
	for (size_t i = 0; name != NULL && i < N_FTYPES; i++)
		if (strcasecmp(name, ftypes[i].name) == 0)
			return ftypes[i].ftype;
	return -1;
}

const char *
quantize_ftype_name(int ftype)
{
	for (size_t i = 0; i < N_FTYPES; i++)
		if (ftypes[i].ftype == ftype)
			return ftypes[i].name;
	return ftype == QF_ALL_F32 ? "F32" : ftype == QF_F16 ? "F16" : ftype == QF_BF16 ? "BF16" : "?";
}

const char *
quantize_ftype_list(void)
{
	return "Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K";
}

int
quantize_ftype_base(int ftype)
{
	for (size_t i = 0; i < N_FTYPES; i++)
		if (ftypes[i].ftype == ftype)
			return ftypes[i].base;
	return -1;
}

static int
has(const char *name, const char *part)
{
	return strstr(name, part) != NULL;
}

static int
is_attn_v(const char *name)
{
	return has(name, "attn_v.weight") || has(name, "attn_qkv.weight") || has(name, "attn_kv_b.weight");
}

void
quantize_mix_init(struct quantize_mix *m, int ftype, int n_layer, int n_gqa,
    const char *const *names, int n_tensors)
{
	memset(m, 0, sizeof *m);
	m->ftype = ftype;
	m->base = quantize_ftype_base(ftype);
	m->n_layer = n_layer;
	m->n_gqa = n_gqa > 0 ? n_gqa : 1;
	for (int i = 0; i < n_tensors; i++) {
		if (is_attn_v(names[i]))
			m->n_attention_wv++;
		else if (strcmp(names[i], "output.weight") == 0)
			m->has_output = 1;
	}
	/* llama.cpp takes the layer count for FFN down, not a count of names. */
	m->n_ffn_down = n_layer;
}

/* The layers that get more bits: first and last eighth, every third between. */
static int
use_more_bits(int i_layer, int n_layers)
{
	return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 ||
	    (i_layer - n_layers / 8) % 3 == 2;
}

static int
blck(int type)
{
	const struct quant_type *t = quant_type_get_ref(type);
	return t ? t->blck : 1;
}

/* Whether llama.cpp would quantize this tensor at all. */
static int
quantizable(const char *name, int n_dims)
{
	size_t len = strlen(name);
	if (n_dims < 2 || len < 6 || strcmp(name + len - 6, "weight") != 0)
		return 0;
	if (has(name, "_norm.weight") || has(name, "ffn_gate_inp.weight"))
		return 0;
	if (strcmp(name, "position_embd.weight") == 0 || strcmp(name, "token_types.weight") == 0)
		return 0;
	return 1;
}

static int
pick(struct quantize_mix *m, const char *name, int64_t ne0)
{
	const int ft = m->ftype;
	int t = m->base;

	if (strcmp(name, "output.weight") == 0 ||
	    (!m->has_output && strcmp(name, "token_embd.weight") == 0)) {
		if (ne0 % QK_K != 0)
			t = QT_Q8_0;
		else if (t != QT_Q8_0)
			t = QT_Q6_K;
	} else if (strcmp(name, "token_embd.weight") == 0) {
		/* the base type (the IQ mixes we do not make are the exceptions) */
	} else if (is_attn_v(name)) {
		if (ft == QF_Q2_K)
			t = m->n_gqa >= 4 ? QT_Q4_K : QT_Q3_K;
		else if (ft == QF_Q3_K_M)
			t = m->i_attention_wv < 2 ? QT_Q5_K : QT_Q4_K;
		else if (ft == QF_Q3_K_L)
			t = QT_Q5_K;
		else if ((ft == QF_Q4_K_M || ft == QF_Q5_K_M) &&
		    use_more_bits(m->i_attention_wv, m->n_attention_wv))
			t = QT_Q6_K;
		else if (ft == QF_Q4_K_S && m->i_attention_wv < 4)
			t = QT_Q5_K;
		m->i_attention_wv++;
	} else if (has(name, "ffn_down")) {
		const int i = m->i_ffn_down, nl = m->n_ffn_down;
		if (ft == QF_Q2_K)
			t = QT_Q3_K;
		else if (ft == QF_Q3_K_M)
			t = i < nl / 16 ? QT_Q5_K : QT_Q4_K;
		else if (ft == QF_Q3_K_L)
			t = QT_Q5_K;
		else if (ft == QF_Q4_K_M) {
			if (use_more_bits(i, nl))
				t = QT_Q6_K;
		} else if (ft == QF_Q5_K_M && use_more_bits(i, nl))
			t = QT_Q6_K;
		else if (ft == QF_Q4_K_S && i < nl / 8)
			t = QT_Q5_K;
		m->i_ffn_down++;
	} else if (has(name, "attn_output.weight")) {
		if (ft == QF_Q2_K)
			t = QT_Q3_K;
		else if (ft == QF_Q3_K_M)
			t = QT_Q4_K;
		else if (ft == QF_Q3_K_L)
			t = QT_Q5_K;
	} else if (has(name, "attn_qkv.weight")) {
		if (ft == QF_Q3_K_M || ft == QF_Q3_K_L)
			t = QT_Q4_K;
		else if (ft == QF_Q4_K_M)
			t = QT_Q5_K;
		else if (ft == QF_Q5_K_M)
			t = QT_Q6_K;
	}
	return t;
}

int
quantize_mix_type(struct quantize_mix *m, const char *name, int n_dims, int64_t ne0, int cur_type)
{
	if (!quantizable(name, n_dims))
		return cur_type;
	int t = pick(m, name, ne0);
	if (ne0 % blck(t) != 0) {
		/* b4748 sends Q2_K/Q3_K to IQ4_NL, which this engine does not
		 * have; Q4_0 is what later llama.cpp picks for them. */
		switch (t) {
		case QT_Q2_K: case QT_Q3_K: t = QT_Q4_0; break;
		case QT_Q4_K: t = QT_Q5_0; break;
		case QT_Q5_K: t = QT_Q5_1; break;
		case QT_Q6_K: t = QT_Q8_0; break;
		default: break;
		}
		if (ne0 % blck(t) != 0)
			t = QT_F16;
		m->n_fallback++;
	}
	return t;
}
