build-pre/obj/src/util/misc.o: src/util/misc.c src/util/util.h
src/util/util.h:
